#!/bin/sh
# Install the Debian packages cfl needs to build, test and run its demo.
# As root: installs what is missing with apt-get. Otherwise: prints the exact command.
# Usage: scripts/deps.sh [build|check|demo]   (default: check)
set -eu

what=${1:-check}
build="cmake make gcc pkg-config libssl-dev openssl libyaml-dev libjansson-dev libedit-dev zlib1g-dev"
check="$build git libcmocka-dev clang clang-format libclang-rt-14-dev haproxy nginx-light stunnel4 iproute2 iputils-ping python3 procps"
demo="$build dataset-fashion-mnist"
# The Python client API's tests and examples (python/, examples/jobs/hello-numpy, pytorch-fmnist):
# for the test run only, not the demo.
python="python3-numpy python3-torch python3-torchvision"

case "$what" in
build) pkgs=$build ;;
check) pkgs="$check $python dataset-fashion-mnist" ;;
demo) pkgs=$demo ;;
*) echo "usage: scripts/deps.sh [build|check|demo]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "cfl needs these Debian packages:$missing" >&2
	echo "run as root:  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 1
fi

# No init system here: keep daemons (haproxy, nginx, stunnel) from being started by their
# packages; tests run them in the foreground with private configs.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || apt-get update
apt-get install -y -qq --no-install-recommends $missing >/dev/null
