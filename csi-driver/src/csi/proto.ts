import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/**
 * The .proto ships in the package beside `dist/` and `src/`, so the same relative URL works from
 * compiled code and from a checkout.
 */
const CSI_PROTO_PATH = fileURLToPath(new URL('../../proto/csi.proto', import.meta.url));

export interface CsiServices {
  Identity: ServiceDefinition;
  Controller: ServiceDefinition;
  Node: ServiceDefinition;
}

/** Client constructors too, for tests and the bench. */
export interface CsiPackage {
  services: CsiServices;
  grpcObject: GrpcObject;
}

let loaded: CsiPackage | undefined;

export function loadCsiPackage(): CsiPackage {
  if (loaded) return loaded;
  const definition = loadSync(CSI_PROTO_PATH, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const grpcObject = loadPackageDefinition(definition);
  const v1 = (grpcObject['csi'] as GrpcObject)['v1'] as GrpcObject;
  const service = (name: keyof CsiServices): ServiceDefinition =>
    (v1[name] as unknown as { service: ServiceDefinition }).service;
  loaded = {
    services: { Identity: service('Identity'), Controller: service('Controller'), Node: service('Node') },
    grpcObject,
  };
  return loaded;
}
