import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/**
 * The .protos ship in the package beside `dist/` and `src/`, so the same relative URL works from
 * compiled code and from a checkout.
 */
const protoPath = (file: string): string => fileURLToPath(new URL(`../../proto/${file}`, import.meta.url));

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

/** The kubelet plugin registration API (ADR 0076); `grpcObject` gives tests the kubelet's client. */
export interface RegistrationPackage {
  service: ServiceDefinition;
  grpcObject: GrpcObject;
}

function load(file: string): GrpcObject {
  const definition = loadSync(protoPath(file), {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return loadPackageDefinition(definition);
}

function serviceIn(namespace: GrpcObject, name: string): ServiceDefinition {
  return (namespace[name] as unknown as { service: ServiceDefinition }).service;
}

let csi: CsiPackage | undefined;
let registration: RegistrationPackage | undefined;

export function loadCsiPackage(): CsiPackage {
  if (csi) return csi;
  const grpcObject = load('csi.proto');
  const v1 = (grpcObject['csi'] as GrpcObject)['v1'] as GrpcObject;
  csi = {
    services: { Identity: serviceIn(v1, 'Identity'), Controller: serviceIn(v1, 'Controller'), Node: serviceIn(v1, 'Node') },
    grpcObject,
  };
  return csi;
}

export function loadRegistrationPackage(): RegistrationPackage {
  if (registration) return registration;
  const grpcObject = load('pluginregistration.proto');
  registration = { service: serviceIn(grpcObject['pluginregistration'] as GrpcObject, 'Registration'), grpcObject };
  return registration;
}
