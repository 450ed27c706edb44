#!/usr/bin/env bash
# make package-test: installs the package built by mkdeb.sh with dpkg -i
# on this (Debian) machine, as root, checks what it installed, then purges
# it and checks that it is gone.
set -euo pipefail
deb=${1:?usage: test.sh PACKAGE.deb}
[ "$(id -u)" = 0 ] || { echo "package-test: skipped, dpkg -i needs root"; exit 0; }
fail() { echo "package-test: FAIL: $*"; dpkg --purge xvs >/dev/null 2>&1 || true; exit 1; }

dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
dpkg-query -W -f='${Status}\n' xvs | grep -q "install ok installed" || fail "xvs is not installed"
dpkg-query -W -f='${Conffiles}\n' xvs | grep -q "/etc/xvs/xvs.toml" || fail "/etc/xvs/xvs.toml is no conffile"
/usr/sbin/xvsd -check /etc/xvs/xvs.toml || fail "xvsd -check refuses the installed default"
/usr/sbin/xvsd -check || fail "xvsd -check refuses its default path"
/usr/sbin/xvsadm -h >/dev/null || fail "xvsadm -h"
# The binaries carry the version the package has (make build's LDFLAGS).
. "$(dirname "$0")/version.sh"
v=$(binary_version /usr/sbin/xvsd)
/usr/sbin/xvsadm -v | grep -qF "xvsadm $v " || fail "xvsadm -v does not print xvsd's version $v"
pkgv=$(dpkg-query -W -f='${Version}' xvs)
[ "$pkgv" = "$(deb_version "$v")" ] || fail "package version $pkgv is not the binaries' ($v)"
for page in xvsadm xvsd xvs.toml; do
	if ! man -w "$page" >/dev/null 2>&1; then
		grep -qs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/* &&
			fail "man -w $page: dpkg excludes /usr/share/man on this machine (/etc/dpkg/dpkg.cfg.d)"
		fail "man -w $page"
	fi
done
man xvsadm 2>/dev/null | grep -q -- "--start-daemon" || fail "man xvsadm does not render --start-daemon"
[ -f /usr/share/bash-completion/completions/xvsadm ] || fail "no bash completion"
bash -n /usr/share/bash-completion/completions/xvsadm || fail "the bash completion does not parse"
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify --man=no /lib/systemd/system/xvsd.service || fail "systemd-analyze verify xvsd.service"
fi
ls /usr/share/doc/xvs/examples/nat.toml >/dev/null || fail "no examples"

dpkg --purge xvs >/dev/null || fail "dpkg --purge xvs"
for f in /usr/sbin/xvsd /usr/sbin/xvsadm /lib/systemd/system/xvsd.service /etc/xvs/xvs.toml; do
	[ ! -e "$f" ] || fail "$f is left after dpkg --purge"
done
echo "package-test: $deb installs, checks and purges: ok"
