# Lighthouse Bridge. `make demo` runs the main job on the embedded store; `make test` runs every test, `make test-unit` the fast tier.
SHELL := /bin/bash
NODE_BIN := $(shell bash test/setup/node.sh)
export PATH := $(NODE_BIN):$(PATH)
export LHB_TOOLS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lighthouse-bridge/tools

.PHONY: all apt node_modules build chart tools test test-unit e2e demo bench image image-check clean
all: build

apt:
	@bash test/setup/apt.sh

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
node_modules: node_modules/.package-lock.json

build: node_modules
	@bash csi-driver/scripts/build-native.sh
	npx tsc -b

# The chart carries generated files: a copy of crds/ (helm needs it inside the chart; a symlink
# breaks `helm package`) and the alert rules and dashboard rendered from operator/src/monitoring.ts;
# docs/reference/bridgeproject.md is rendered from the CRD.
# `make chart` regenerates them; operator/src/helmChart.test.ts fails when the committed files
# differ, so what `helm install` from a checkout gets is what the tests judged.
chart: build
	cp crds/*.yaml charts/lighthouse-bridge/crds/
	node -e "import('./operator/dist/monitoringFiles.js').then((m) => m.writeMonitoringFiles('charts/lighthouse-bridge/files'))"
	node -e "import('./operator/dist/crdReference.js').then((m) => m.writeCrdReference('crds/bridgeprojects.bridge.lighthouse.dev.yaml', 'docs/reference/bridgeproject.md'))"

tools:
	@bash test/setup/tools.sh

test: apt build tools
	npm test

# The project in a real single-node cluster (kubelet, containerd, the chart via helm): root only,
# restores the host afterwards (test/e2e/run.sh, ADR 0086).
e2e: apt build tools
	bash test/e2e/run.sh

# Pure code only (no Redis, FUSE or kube): seconds, for while you edit (ADR 0004).
test-unit: build
	npm run test:unit

demo: apt build
	bash cli/demo.sh

bench: apt build
	bash bench/run-all.sh

# The images (project, pause, workbench, redis) as docker-archive tarballs in image/out/, built
# without a Docker engine (ADR 0005). Not part of `make test`: image-check builds them twice and
# runs each in a chroot (root only), then imports them into a private containerd when installed.
image: node_modules
	bash image/build.sh

image-check: node_modules
	bash image/check.sh

clean:
	rm -rf */dist node_modules
