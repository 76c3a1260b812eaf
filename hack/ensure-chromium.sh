#!/usr/bin/env bash
# The drift report test opens the HTML report in headless Chromium (Debian's
# `chromium` package). Install it when missing; fail loudly when we cannot.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null; then
    exit 0
  fi
done
if ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: no chromium and no apt-get; install Chromium and rerun 'make test'" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "ensure-chromium: installing Debian's chromium package (one time)" >&2
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; }; then
  echo "ensure-chromium: 'apt-get install chromium' failed; run it by hand, then rerun 'make test'" >&2
  exit 1
fi
