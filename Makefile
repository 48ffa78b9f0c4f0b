# Short verbs over CMake. The build itself is CMake + Ninja.
BUILD      ?= build
ASAN_BUILD ?= build-asan
CMAKE_ARGS ?=
DIR        ?=

.PHONY: all build run test asan unit system bench conformance-jsonpath \
        conformance-jsonschema conformance-jsonata fuzz bootstrap clean

all: build

bootstrap:
	@./scripts/bootstrap.sh

build:
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD)

# Argus with demo data on http://127.0.0.1:8080 (SQLite in ./var).
run: bootstrap build
	@mkdir -p var
	./$(BUILD)/argus serve --demo

# Everything: unit and conformance tests (ctest), system tests on SQLite and
# PostgreSQL, then the same again in an ASan+UBSan build.
test: bootstrap
	@./scripts/test.sh

# Only the ASan+UBSan build and its tests.
asan: bootstrap
	@./scripts/test.sh --asan-only

bench: bootstrap build
	@./bench/http.sh
	@ARGUS_BIN=./$(BUILD)/argus ./bench/ingest.sh
	@BUILD_DIR=$(BUILD) ./bench/tsdb.sh
	@BUILD_DIR=$(BUILD) ./bench/bus.sh
	@BUILD_DIR=$(BUILD) ./bench/msgparse.sh
	@BUILD_DIR=$(BUILD) ./bench/jsonpath.sh
	@BUILD=$(BUILD) ./bench/jsonschema.sh
	@BUILD_DIR=$(BUILD) ./bench/jsonata.sh

conformance-jsonpath: build
	@./$(BUILD)/src/jsonpath/jsonpath_conformance $(if $(DIR),$(DIR),../shared/conformance/jsonpath)

conformance-jsonschema: build
	@./$(BUILD)/src/jsonschema/jsonschema_conformance $(if $(DIR),$(DIR),../shared/conformance/jsonschema)

conformance-jsonata: build
	@./$(BUILD)/src/jsonata/jsonata_conformance $(if $(DIR),$(DIR),../shared/conformance/jsonata) tests/conformance/jsonata_known_gaps.txt

# libFuzzer targets (clang): make fuzz FUZZ_TARGET=jsonpath FUZZ_SECONDS=1200
FUZZ_TARGET  ?= jsonpath
FUZZ_SECONDS ?= 60
fuzz:
	@CC=clang cmake -S . -B build-fuzz -G Ninja -DARGUS_FUZZ=ON -DARGUS_TESTS=OFF >/dev/null
	@cmake --build build-fuzz --target fuzz_$(FUZZ_TARGET)
	@mkdir -p tests/fuzz/corpus-work/$(FUZZ_TARGET)
	$$(find build-fuzz/src -name fuzz_$(FUZZ_TARGET) -type f) -max_total_time=$(FUZZ_SECONDS) \
	  tests/fuzz/corpus-work/$(FUZZ_TARGET) tests/fuzz/corpus/$(FUZZ_TARGET)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
