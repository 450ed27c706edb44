#!/usr/bin/env bash
# Builds the xvs Debian package with dpkg-deb from what `make build` built:
#   /usr/sbin/xvsd, /usr/sbin/xvsadm              the director and its CLI
#   /lib/systemd/system/xvsd.service               the unit (internal/pkg)
#   /etc/xvs/xvs.toml                              the commented default (configs/xvs.toml), a conffile
#   /usr/share/man/man8/xvsd.8.gz, xvsadm.8.gz     written by the binaries themselves from their flags,
#   /usr/share/man/man5/xvs.toml.5.gz              option tables and the configuration schema
#   /usr/share/bash-completion/completions/xvsadm  written by xvsadm completion bash
#   /usr/share/doc/xvs/examples/                   configs/*.toml
# xvs-echo and xvs-pktgen are test and benchmark tools, not shipped.
# The package's version is the one the binaries were stamped with (see
# version.sh). Usage: [VERSION=V] mkdeb.sh BIN_DIR; writes
# BIN_DIR/xvs_VERSION_ARCH.deb and prints its path.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-bin}
. internal/pkg/version.sh
# The package's version is the binaries' own (make build stamps it with
# LDFLAGS from git describe): both must carry the same, and the one the
# Makefile asked for when it says ($VERSION).
xvs_version=$(binary_version "$bin/xvsd")
"$bin/xvsadm" -v | grep -qF "xvsadm $xvs_version " || { echo "mkdeb: $bin/xvsadm -v is not xvsd's version $xvs_version" >&2; exit 1; }
if [ -n "${VERSION:-}" ] && [ "$xvs_version" != "$VERSION" ]; then
	echo "mkdeb: $bin/xvsd is version $xvs_version, not $VERSION: build it with make build (LDFLAGS)" >&2
	exit 1
fi
version=$(deb_version "$xvs_version")
arch=$(dpkg --print-architecture)
root="$bin/pkg/root"
rm -rf "$bin/pkg"
mkdir -p "$root/DEBIAN"

install -D -m 0755 "$bin/xvsd" "$root/usr/sbin/xvsd"
install -D -m 0755 "$bin/xvsadm" "$root/usr/sbin/xvsadm"
install -D -m 0644 internal/pkg/xvsd.service "$root/lib/systemd/system/xvsd.service"
install -D -m 0644 configs/xvs.toml "$root/etc/xvs/xvs.toml"
mkdir -p "$root/usr/share/man/man8" "$root/usr/share/man/man5" "$root/usr/share/bash-completion/completions" "$root/usr/share/doc/xvs/examples"
"$bin/xvsd" -manpage xvsd.8 | gzip -9n > "$root/usr/share/man/man8/xvsd.8.gz"
"$bin/xvsd" -manpage xvs.toml.5 | gzip -9n > "$root/usr/share/man/man5/xvs.toml.5.gz"
"$bin/xvsadm" manpage | gzip -9n > "$root/usr/share/man/man8/xvsadm.8.gz"
"$bin/xvsadm" completion bash > "$root/usr/share/bash-completion/completions/xvsadm"
for f in configs/*.toml; do
	[ "$(basename "$f")" = xvs.toml ] || install -m 0644 "$f" "$root/usr/share/doc/xvs/examples/"
done
install -m 0644 internal/pkg/debian/copyright "$root/usr/share/doc/xvs/copyright"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" internal/pkg/debian/control > "$root/DEBIAN/control"
install -m 0644 internal/pkg/debian/conffiles "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "internal/pkg/debian/$s" "$root/DEBIAN/$s"
done
deb="$bin/xvs_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
