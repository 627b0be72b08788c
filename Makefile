# Lighthouse Bridge. `make demo` runs the main job on the embedded store; `make test` runs every test, `make test-unit` the fast tier.
SHELL := /bin/bash
NODE_BIN := $(shell bash test/setup/node.sh)
export PATH := $(NODE_BIN):$(PATH)
export LHB_TOOLS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lighthouse-bridge/tools

.PHONY: all apt node_modules build tools test test-unit demo bench clean
all: build

apt:
	@bash test/setup/apt.sh

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
node_modules: node_modules/.package-lock.json

# crds/ is the source; helm needs a copy inside the chart (a symlink breaks `helm package`), and
# operator/src/helmChart.test.ts fails when the two differ. The same holds for the chart's alert rules
# and dashboard, rendered from operator/src/monitoring.ts after the build.
CHART_CRDS := $(patsubst crds/%,charts/lighthouse-bridge/crds/%,$(wildcard crds/*.yaml))
$(CHART_CRDS): charts/lighthouse-bridge/crds/%: crds/%
	cp $< $@

build: node_modules $(CHART_CRDS)
	@bash csi-driver/scripts/build-fuse-native.sh
	npx tsc -b
	node -e "import('./operator/dist/monitoringFiles.js').then((m) => m.writeMonitoringFiles('charts/lighthouse-bridge/files'))"

tools:
	@bash test/setup/tools.sh

test: apt build tools
	npm test

# Pure code only (no Redis, FUSE or kube): seconds, for while you edit (ADR 0004).
test-unit: build
	npm run test:unit

demo: apt build
	bash cli/demo.sh

bench: apt build
	bash bench/run-all.sh

clean:
	rm -rf */dist node_modules
