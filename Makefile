# Lighthouse Bridge. `make demo` runs the main job on the embedded store; `make test` runs every test.
SHELL := /bin/bash
NODE_BIN := $(shell bash test/setup/node.sh)
export PATH := $(NODE_BIN):$(PATH)
export LHB_TOOLS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lighthouse-bridge/tools

.PHONY: all apt node_modules build tools test demo bench clean
all: build

apt:
	@bash test/setup/apt.sh

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
node_modules: node_modules/.package-lock.json

build: node_modules
	@bash csi-driver/scripts/build-fuse-native.sh
	npx tsc -b

tools:
	@bash test/setup/tools.sh

test: apt build tools
	npm test

demo: apt build
	bash cli/demo.sh

bench: apt build
	bash bench/run-all.sh

clean:
	rm -rf */dist node_modules
