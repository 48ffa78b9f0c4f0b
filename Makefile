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

conformance-jsonpath: build
	@./$(BUILD)/jsonpath_conformance $(if $(DIR),$(DIR),../shared/conformance/jsonpath)

conformance-jsonschema: build
	@./$(BUILD)/jsonschema_conformance $(if $(DIR),$(DIR),../shared/conformance/jsonschema)

conformance-jsonata: build
	@./$(BUILD)/jsonata_conformance $(if $(DIR),$(DIR),../shared/conformance/jsonata)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
