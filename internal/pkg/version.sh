# Sourced by mkdeb.sh and test.sh: the package's version from xvs's own,
# the version the Makefile stamps into the binaries (internal/version; git
# describe) and xvsd -version prints.
#   v1.2.3, v1.2.3-4-gabcdef0      1.2.3, 1.2.3+4+gabcdef0 (a tag)
#   abcdef0, abcdef0-dirty, devel  0.1.0+gitN.abcdef0[.dirty] (N: commits)

# binary_version prints the version the xvsd binary $1 was stamped with.
binary_version() {
	"$1" -version | awk '{print $2}'
}

# deb_version prints the Debian version for xvs's version $1.
deb_version() {
	local v=$1
	# A tag is dotted numbers; an abbreviated commit may start with a digit
	# too, but has no dot.
	if [[ $v =~ ^v?[0-9]+(\.[0-9]+)+ ]]; then
		v=${v#v}
		echo "${v//-/+}"
	else
		echo "0.1.0+git$(git rev-list --count HEAD 2>/dev/null || echo 0).${v//-/.}"
	fi
}
