# Two commands for users (README): `make demo` and `make test`.
# The other targets run one phase of scripts/run_tests.sh for developers.
# Everything runs as root (podman, PostgreSQL clusters owned by `postgres`,
# the omero CLI run as `omero-server`); non-root users go through sudo.

SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
RUN_TESTS := $(SUDO) scripts/run_tests.sh

.PHONY: demo test bootstrap unit integration sanity lint molecule build image bench clean

demo: bootstrap
	$(SUDO) scripts/demo.sh

test: bootstrap
	$(RUN_TESTS)

bootstrap:
	scripts/bootstrap.sh

unit: bootstrap
	$(RUN_TESTS) unit

build: bootstrap
	$(RUN_TESTS) build

integration: bootstrap
	$(RUN_TESTS) integration

sanity: bootstrap
	$(RUN_TESTS) sanity

lint: bootstrap
	$(RUN_TESTS) lint

molecule: bootstrap
	$(RUN_TESTS) molecule

image: bootstrap
	$(SUDO) scripts/build_image.sh

# Caches outside the checkout (venv, wheels, podman image) are kept on purpose.
clean:
	rm -rf tests/output .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Measurements against the raw tools and peers (not part of `make test`; the
# large sandboxes they build take minutes). One: make bench BENCH=db
BENCH ?= db datadir cleanse roles_backup restic
bench: bootstrap
	for b in $(BENCH); do $(SUDO) env PYTHONPATH=tools /var/cache/omero-backup/venv/bin/python benchmarks/bench_$$b.py || exit 1; done

# The execution environment of execution-environment-debian.yml, built with
# ansible-builder on the local Debian image (cached; `make test` builds it too).
.PHONY: ee
ee: bootstrap
	$(SUDO) scripts/build_ee.sh
