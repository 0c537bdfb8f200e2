#!/usr/bin/env bash
# Every test of the collection, in order, stopping at the first failure:
#
#   unit         pytest tests/unit
#   build        ansible-galaxy collection build + install into a temp path,
#                ansible-doc of every module from the installed copy
#   integration  pytest tests/integration against the installed copy
#   sanity       ansible-test sanity --venv (no ignore entries allowed)
#   lint         ansible-lint --profile production
#   molecule     the podman scenarios under extensions/molecule
#
# `scripts/run_tests.sh` runs all phases; `scripts/run_tests.sh sanity lint`
# runs only those (integration and molecule bring in build when needed).
# OMERO_BACKUP_MOLECULE_SCENARIOS="default" limits molecule to those scenarios.
# Container names are global: do not run the same scenario twice at once.
# Expects the venv scripts/bootstrap.sh makes (`make test` runs it first).
#
# build, sanity and lint work on a copy of the git-tracked and new (not
# ignored) files, so caches and leftovers in the checkout cannot change the
# outcome. Set OMERO_BACKUP_KEEP_WORK=1 to keep that copy for inspection.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${OMERO_BACKUP_CACHE:-/var/cache/omero-backup}
VENV=${OMERO_BACKUP_VENV:-$CACHE/venv}
PY=$VENV/bin/python
SANITY_PYTHON=${OMERO_BACKUP_SANITY_PYTHON:-3.11}
ALL_PHASES=(unit build integration sanity lint molecule)

export PATH="$VENV/bin:$PATH"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/tests/podman/containers.conf}
# Keep the checkout free of bytecode and pytest caches.
export PYTHONDONTWRITEBYTECODE=1
export ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-}
export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-}

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
die() { echo "run_tests: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo make test): podman, PostgreSQL clusters and the omero CLI need it"
[ -x "$PY" ] || die "no venv at $VENV; run scripts/bootstrap.sh first (make test does)"

if [ $# -gt 0 ]; then
  PHASES=("$@")
  for p in "${PHASES[@]}"; do
    [[ " ${ALL_PHASES[*]} " == *" $p "* ]] || die "unknown phase '$p' (phases: ${ALL_PHASES[*]})"
  done
else
  PHASES=("${ALL_PHASES[@]}")
fi

# Short: sandboxes under it hold PostgreSQL sockets (107-byte path limit).
WORK=$(mktemp -d /tmp/obt.XXXXXX)
# Modules run with become (postgres, omero-server) must reach the installed
# collection and the sandboxes below.
chmod 0755 "$WORK"
cleanup() {
  if [ -n "${OMERO_BACKUP_KEEP_WORK:-}" ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

STAGE=$WORK/ansible_collections/omero/backup   # ansible-test insists on this layout
COLLECTIONS=$WORK/collections                   # where the built tarball is installed
REPORTS=$WORK/reports
mkdir -p "$REPORTS"
declare -A RESULT DETAIL
DONE_PHASES=()
BUILT=

# Counts from a JUnit report, e.g. "41 passed, 0 failed, 0 skipped".
junit_counts() {
  "$PY" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print("%d passed, %d failed, %d skipped" % (tests - failed - skipped, failed, skipped))
EOF
}

run_pytest() {
  local name=$1; shift
  local report=$REPORTS/$name.xml rc=0
  # A private basetemp: pytest prunes /tmp/pytest-of-root/ to the newest three
  # runs, which deletes the sandboxes of another concurrent run.
  (cd "$HERE" && "$PY" -m pytest -p no:cacheprovider -rfEs --basetemp="$WORK/$name" \
      --junitxml="$report" "$@") || rc=$?
  if [ -f "$report" ]; then DETAIL[$name]=$(junit_counts "$report"); fi
  # pytest exits 5 when nothing was collected: a phase that tests nothing fails.
  [ "$rc" -ne 5 ] || DETAIL[$name]="no tests collected"
  return "$rc"
}

stage_collection() {
  [ -d "$STAGE" ] && return 0
  mkdir -p "$STAGE"
  if git -C "$HERE" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and new files; deleted-but-tracked ones are skipped.
    (cd "$HERE" && git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
      tar --null -T - -cf - ) | tar -C "$STAGE" -xf -
  else
    tar -C "$HERE" --exclude=.git --exclude=tests/output --exclude=__pycache__ \
        --exclude=.pytest_cache --exclude=.ansible -cf - . | tar -C "$STAGE" -xf -
  fi
}

phase_unit() {
  run_pytest unit tests/unit
}

phase_build() {
  stage_collection
  local dist=$WORK/dist tarball
  ansible-galaxy collection build --force --output-path "$dist" "$STAGE" >/dev/null
  tarball=$(ls "$dist"/omero-backup-*.tar.gz)
  ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS ansible-galaxy collection install --offline --force -p "$COLLECTIONS" "$tarball" >/dev/null
  local installed=$COLLECTIONS/ansible_collections/omero/backup modules=() m
  [ -f "$installed/MANIFEST.json" ] || { echo "collection not installed at $installed" >&2; return 1; }
  for m in "$installed"/plugins/modules/*.py; do
    [ -e "$m" ] || continue
    m=$(basename "$m" .py)
    ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS ansible-doc -t module "omero.backup.$m" >/dev/null ||
      { echo "ansible-doc omero.backup.$m failed" >&2; return 1; }
    modules+=("$m")
  done
  DETAIL[build]="$(basename "$tarball") $(du -k "$tarball" | cut -f1) KiB, $(tar -tzf "$tarball" | grep -vc '/$') files; ansible-doc ok: ${modules[*]:-none}"
  BUILT=1
}

need_build() {
  [ -n "$BUILT" ] || run_phase build
}

phase_integration() {
  need_build
  OMERO_BACKUP_COLLECTIONS_PATH=$COLLECTIONS run_pytest integration tests/integration
}

phase_sanity() {
  stage_collection
  local ignores
  ignores=$(find "$STAGE/tests/sanity" -name 'ignore-*.txt' -size +0 2>/dev/null || true)
  if [ -n "$ignores" ]; then
    echo "sanity ignore entries are not allowed; fix the findings instead:" >&2
    echo "$ignores" >&2
    return 1
  fi
  local out=$REPORTS/sanity.log rc=0
  (cd "$STAGE" && ansible-test sanity --venv --python "$SANITY_PYTHON" --color no 2>&1) | tee "$out" || rc=$?
  # ansible-test reports errors relative to the collection root, so they read
  # the same as paths in the checkout.
  DETAIL[sanity]="$(grep -c '^Running sanity test' "$out" || true) tests run, $(grep -cE '^ERROR: Found [0-9]+ ' "$out" || true) with findings"
  # ansible-test only warns when a test's program (e.g. shellcheck) is missing;
  # a test that did not run must not count as passed.
  if grep -q '^WARNING: Required program .* not found' "$out"; then
    grep '^WARNING: Required program' "$out" >&2
    DETAIL[sanity]+=", skipped for a missing program"
    return 1
  fi
  return "$rc"
}

phase_lint() {
  stage_collection
  local rc=0 out=$REPORTS/lint.log
  # The copy sits in an ansible_collections tree, so the playbooks resolve
  # omero.backup.* from the same source that is being linted.
  (cd "$STAGE" && ANSIBLE_COLLECTIONS_PATH=$WORK ansible-lint --offline --profile production --nocolor 2>&1) | tee "$out" || rc=$?
  DETAIL[lint]=$(grep -E '^(Passed|Failed)' "$out" | tail -n1 || true)
  return "$rc"
}

molecule_in_stage() {
  local image=$1 command=$2 scenario=$3
  (cd "$STAGE" &&
    OMERO_BACKUP_TEST_IMAGE=$image ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS \
    MOLECULE_EPHEMERAL_DIRECTORY=$WORK/molecule/$scenario molecule "$command" -s "$scenario")
}

phase_molecule() {
  need_build
  stage_collection
  local image scenarios=() s
  image=$("$HERE/scripts/build_image.sh")
  if [ -n "${OMERO_BACKUP_MOLECULE_SCENARIOS:-}" ]; then
    read -r -a scenarios <<<"$OMERO_BACKUP_MOLECULE_SCENARIOS"
  else
    for s in "$STAGE"/extensions/molecule/*/molecule.yml; do
      [ -e "$s" ] && scenarios+=("$(basename "$(dirname "$s")")")
    done
  fi
  [ ${#scenarios[@]} -gt 0 ] || { echo "no molecule scenarios under extensions/molecule" >&2; return 1; }
  local timings=() t0 rc
  for s in "${scenarios[@]}"; do
    # molecule finds extensions/molecule from the collection root; running in
    # the copy keeps its state out of the checkout. The modules come from the
    # installed tarball, like the integration tests'.
    t0=$SECONDS rc=0
    molecule_in_stage "$image" test "$s" || rc=$?
    timings+=("$s $((SECONDS - t0))s")
    if [ "$rc" -ne 0 ]; then
      # A failed step leaves the containers running; they would hold the
      # (global) container names against the next run.
      molecule_in_stage "$image" destroy "$s" >/dev/null 2>&1 || true
      DETAIL[molecule]="scenario $s failed; $(IFS=,; echo "${timings[*]}")"
      return 1
    fi
  done
  DETAIL[molecule]="passed: $(IFS=,; echo "${timings[*]}") (image $image)"
}

summary() {
  echo
  bold "==== summary ===="
  local p
  for p in "${DONE_PHASES[@]}"; do
    printf '%-12s %-6s %5ss  %s\n' "$p" "${RESULT[$p]}" "${ELAPSED[$p]}" "${DETAIL[$p]:-}"
  done
  printf '%-12s %-6s %5ss\n' total "$1" "$((SECONDS - START))"
  # One closing line in the plain "N passed, N failed" form for CI's reader:
  # the pytest phases' counts added up.
  local passed=0 failed=0 skipped=0 d n
  for p in "${DONE_PHASES[@]}"; do
    d=${DETAIL[$p]:-}
    [[ $d =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped ]] || continue
    n=("${BASH_REMATCH[@]}")
    passed=$((passed + n[1])); failed=$((failed + n[2])); skipped=$((skipped + n[3]))
  done
  echo "pytest: $passed passed, $failed failed, $skipped skipped"
}

declare -A ELAPSED
run_phase() {
  local p=$1 t0=$SECONDS rc=0
  bold "==== $p ===="
  "phase_$p" || rc=$?
  ELAPSED[$p]=$((SECONDS - t0))
  DONE_PHASES+=("$p")
  if [ "$rc" -eq 0 ]; then
    RESULT[$p]=PASSED
    bold "==== $p: PASSED in ${ELAPSED[$p]}s ${DETAIL[$p]:+— ${DETAIL[$p]}}"
  else
    RESULT[$p]=FAILED
    bold "==== $p: FAILED (exit $rc) in ${ELAPSED[$p]}s ${DETAIL[$p]:+— ${DETAIL[$p]}}"
    summary FAILED
    exit 1
  fi
}

START=$SECONDS
for p in "${PHASES[@]}"; do
  if [ "$p" = build ] && [ -n "$BUILT" ]; then continue; fi
  run_phase "$p"
done
summary PASSED
