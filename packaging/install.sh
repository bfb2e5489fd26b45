#!/bin/sh
# Install this portable-redis release on this host, or remove it.
#
#   ./install.sh [--prefix DIR] [--init systemd|sysv|none]
#   ./install.sh --uninstall [--prefix DIR]
#
# Installs the release into DIR (default /opt/portable-redis), creates the
# redis user and group if missing, the data, log and pid folders, and the
# service definition for the host's init system (systemd units, or SysV init
# scripts registered with chkconfig, insserv or update-rc.d). Running it
# again changes nothing that is already in place. A configuration file you
# edited is never overwritten: the release's version is written beside it as
# *.new. --uninstall removes the programs and service definitions and keeps
# the data, the logs, the user and every configuration file you edited.
#
# POSIX sh: CentOS 6's bash 4.1, SUSE 11's sh and dash run it alike.

set -u

PREFIX=/opt/portable-redis
ACTION=install
INIT=
DATA=/var/lib/portable-redis
LOGS=/var/log/portable-redis
RUNDIR=/var/run/portable-redis
RUNAS=redis
# The services a release carries; the first is enabled at boot.
SERVICES="redis-server redis-sentinel"
CONFIGS="etc/redis.conf etc/sentinel.conf"

say() { echo "install.sh: $*"; }
die() {
    echo "install.sh: $*" >&2
    exit 1
}
usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; PREFIX=$2; shift 2 ;;
        --prefix=*) PREFIX=${1#--prefix=}; shift ;;
        --init) [ $# -ge 2 ] || die "--init needs systemd, sysv or none"; INIT=$2; shift 2 ;;
        --init=*) INIT=${1#--init=}; shift ;;
        --uninstall) ACTION=uninstall; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

case $PREFIX in
    /*) ;;
    *) die "--prefix must be an absolute path, not '$PREFIX'" ;;
esac
case $PREFIX in
    *[!A-Za-z0-9_./+-]*) die "--prefix '$PREFIX' has characters the service files cannot quote; use letters, digits and _ . / + -" ;;
esac
PREFIX=$(echo "$PREFIX" | sed 's|/*$||')
[ -n "$PREFIX" ] || die "--prefix / would scatter the release over the root; name a folder"
case $INIT in
    '' | systemd | sysv | none) ;;
    *) die "--init must be systemd, sysv or none, not '$INIT'" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (it creates a user and installs service files)"

SRC=$(cd "$(dirname "$0")" && pwd) || die "cannot find the release folder"
STATE=$PREFIX/share/portable-redis
CHANGED=0
FILES=0

changed() {
    CHANGED=$((CHANGED + 1))
    say "$*"
}

# A file of the release copied into the prefix (counted, said once at the end).
file_changed() {
    CHANGED=$((CHANGED + 1))
    FILES=$((FILES + 1))
}

# copy SRC DEST MODE: DEST becomes a copy of SRC (through a temporary file
# and a rename) unless it already is one; returns 1 when nothing changed.
copy() {
    if [ -f "$2" ] && [ ! -h "$2" ] && cmp -s "$1" "$2"; then
        chmod "$3" "$2"
        return 1
    fi
    mkdir -p "$(dirname "$2")" || die "cannot create $(dirname "$2")"
    if ! { cp "$1" "$2.tmp.$$" && chmod "$3" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"; }; then
        die "cannot write $2"
    fi
    return 0
}

# folder DIR MODE OWNER
folder() {
    if [ ! -d "$1" ]; then
        mkdir -p "$1" || die "cannot create $1"
        changed "created $1"
    fi
    if ! { chmod "$2" "$1" && chown "$3" "$1"; }; then
        die "cannot set the owner and mode of $1"
    fi
}

detect_init() {
    if [ -n "$INIT" ]; then
        echo "$INIT"
    elif [ -d /run/systemd/system ]; then
        echo systemd
    elif [ -d /etc/init.d ] || [ -d /etc/rc.d/init.d ]; then
        echo sysv
    else
        echo none
    fi
}

initdir() {
    if [ -d /etc/init.d ]; then echo /etc/init.d; else echo /etc/rc.d/init.d; fi
}

# The release's service file for SERVICE and INIT, with the prefix in it.
service_source() {
    case $2 in
        systemd) f=$SRC/lib/systemd/system/$1.service ;;
        sysv) f=$SRC/etc/init.d/$1 ;;
    esac
    sed "s|/opt/portable-redis|$PREFIX|g" "$f" >"$STATE/service.tmp.$1" || die "cannot read $f"
    echo "$STATE/service.tmp.$1"
}

service_dest() {
    case $2 in
        systemd) echo "/etc/systemd/system/$1.service" ;;
        sysv) echo "$(initdir)/$1" ;;
    esac
}

register() {
    case $2 in
        systemd) systemctl enable "$1.service" ;;
        sysv)
            if command -v chkconfig >/dev/null 2>&1; then
                chkconfig --add "$1"
            elif command -v insserv >/dev/null 2>&1; then
                insserv "$1"
            elif command -v update-rc.d >/dev/null 2>&1; then
                update-rc.d "$1" defaults
            else
                say "no chkconfig, insserv or update-rc.d: link $(service_dest "$1" sysv) into your runlevels yourself"
            fi
            ;;
    esac
}

unregister() {
    case $2 in
        systemd)
            systemctl stop "$1.service"
            systemctl disable "$1.service"
            ;;
        sysv)
            "$(service_dest "$1" sysv)" stop
            if command -v chkconfig >/dev/null 2>&1; then
                chkconfig --del "$1"
            elif command -v insserv >/dev/null 2>&1; then
                insserv -r "$1"
            elif command -v update-rc.d >/dev/null 2>&1; then
                update-rc.d -f "$1" remove
            fi
            ;;
    esac
}

# Remove the folders below DIR left empty, deepest first.
prune() {
    find "$1" -depth -type d 2>/dev/null | while read -r d; do
        rmdir "$d" 2>/dev/null
    done
}

# The release's files, relative to its folder, install.sh included.
release_files() {
    (cd "$SRC" && find . \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort)
}

is_config() {
    for c in $CONFIGS; do [ "$1" = "$c" ] && return 0; done
    return 1
}

# config REL: install a configuration file without losing an edit. The
# release's copy of the last installed version is kept in $STATE/pristine.
config() {
    new=$SRC/$1
    dest=$PREFIX/$1
    pristine=$STATE/pristine/$1
    if [ ! -e "$dest" ]; then
        copy "$new" "$dest" 640
        chown "$RUNAS:$RUNAS" "$dest"
        changed "installed $dest"
    elif cmp -s "$new" "$dest"; then
        :
    elif [ -f "$pristine" ] && cmp -s "$dest" "$pristine"; then
        copy "$new" "$dest" 640
        chown "$RUNAS:$RUNAS" "$dest"
        changed "updated $dest (it was not edited here)"
    elif [ -f "$pristine" ] && cmp -s "$new" "$pristine"; then
        say "kept $dest (edited here)"
    else
        if copy "$new" "$dest.new" 640; then
            changed "kept $dest (edited here); this release's version is $dest.new: merge what you need, then remove it"
        else
            say "kept $dest (edited here); this release's version is still in $dest.new"
        fi
    fi
    copy "$new" "$pristine" 644 || :
}

install_release() {
    init=$(detect_init)
    for f in $CONFIGS bin/redis-server; do
        [ -e "$SRC/$f" ] || die "$SRC is not a portable-redis release: $f is missing"
    done

    if ! getent group "$RUNAS" >/dev/null 2>&1; then
        groupadd -r "$RUNAS" || die "cannot create the group $RUNAS (groupadd -r $RUNAS)"
        changed "created the group $RUNAS"
    fi
    if ! getent passwd "$RUNAS" >/dev/null 2>&1; then
        useradd -r -g "$RUNAS" -d "$DATA" -s /sbin/nologin -c "Redis (portable-redis)" "$RUNAS" ||
            die "cannot create the user $RUNAS (useradd -r -g $RUNAS $RUNAS)"
        changed "created the user $RUNAS"
    fi

    folder "$PREFIX" 755 root:root
    folder "$PREFIX/etc" 750 "$RUNAS:$RUNAS"
    folder "$STATE" 755 root:root
    folder "$DATA" 750 "$RUNAS:$RUNAS"
    folder "$LOGS" 750 "$RUNAS:$RUNAS"
    folder "$RUNDIR" 755 "$RUNAS:$RUNAS"

    release_files >"$STATE/release-files.$$" || die "cannot list $SRC"
    while read -r rel; do
        if is_config "$rel"; then
            config "$rel"
        elif [ -h "$SRC/$rel" ]; then
            target=$(readlink "$SRC/$rel")
            if [ "$(readlink "$PREFIX/$rel" 2>/dev/null)" != "$target" ]; then
                mkdir -p "$(dirname "$PREFIX/$rel")"
                if ! { rm -f "$PREFIX/$rel" && ln -s "$target" "$PREFIX/$rel"; }; then
                    die "cannot link $PREFIX/$rel"
                fi
                file_changed
            fi
        else
            mode=644
            [ -x "$SRC/$rel" ] && mode=755
            if copy "$SRC/$rel" "$PREFIX/$rel" $mode; then file_changed; fi
        fi
    done <"$STATE/release-files.$$"
    # Files of an earlier release that this one no longer has.
    if [ -f "$STATE/manifest" ]; then
        while read -r rel; do
            if ! grep -qxF "$rel" "$STATE/release-files.$$" && ! is_config "$rel" &&
                { [ -e "$PREFIX/$rel" ] || [ -h "$PREFIX/$rel" ]; }; then
                rm -f "$PREFIX/$rel"
                file_changed
            fi
        done <"$STATE/manifest"
        prune "$PREFIX"
    fi
    copy "$STATE/release-files.$$" "$STATE/manifest" 644 || :
    rm -f "$STATE/release-files.$$"

    services=
    if [ "$init" != none ]; then
        reload=no
        for s in $SERVICES; do
            src=$(service_source "$s" "$init")
            dest=$(service_dest "$s" "$init")
            mode=644
            [ "$init" = sysv ] && mode=755
            fresh=no
            [ -e "$dest" ] || fresh=yes
            if copy "$src" "$dest" $mode; then
                changed "installed $dest"
                reload=yes
                # Only redis-server starts at boot; Sentinel needs a configuration first.
                if [ $fresh = yes ] && [ "$s" = redis-server ] && [ "$init" = sysv ]; then
                    register "$s" sysv
                fi
            fi
            rm -f "$src"
            services="$services $s"
        done
        if [ "$init" = systemd ] && [ $reload = yes ]; then
            systemctl daemon-reload
            systemctl is-enabled redis-server.service >/dev/null 2>&1 || register redis-server systemd
        fi
    fi
    echo "$init$services" >"$STATE/release-services.$$"
    copy "$STATE/release-services.$$" "$STATE/services" 644 || :
    rm -f "$STATE/release-services.$$"

    [ $FILES = 0 ] || say "installed, replaced or removed $FILES files of the release in $PREFIX"
    if [ $CHANGED = 0 ]; then
        say "nothing changed: $PREFIX already holds this release"
    fi
    case $init in
        systemd) start="systemctl start redis-server" ;;
        sysv) start="$(service_dest redis-server sysv) start" ;;
        none) start="runuser -s /bin/sh $RUNAS -c '$PREFIX/bin/redis-server $PREFIX/etc/redis.conf --daemonize yes'" ;;
    esac
    say "installed in $PREFIX (configuration in $PREFIX/etc, data in $DATA, logs in $LOGS)"
    say "start the server: $start"
}

uninstall_release() {
    [ -f "$STATE/manifest" ] || die "nothing to remove: $STATE/manifest is missing (no release installed in $PREFIX)"
    if [ -f "$STATE/services" ]; then
        read -r init services <"$STATE/services"
        for s in $services; do
            dest=$(service_dest "$s" "$init")
            if [ -e "$dest" ]; then
                unregister "$s" "$init"
                rm -f "$dest"
                say "removed $dest"
            fi
        done
        [ "$init" = systemd ] && [ -n "$services" ] && systemctl daemon-reload
    fi
    while read -r rel; do
        if is_config "$rel"; then
            if [ -f "$STATE/pristine/$rel" ] && cmp -s "$PREFIX/$rel" "$STATE/pristine/$rel"; then
                rm -f "$PREFIX/$rel"
            elif [ -e "$PREFIX/$rel" ]; then
                say "kept $PREFIX/$rel (edited here)"
            fi
            rm -f "$PREFIX/$rel.new"
        else
            rm -f "$PREFIX/$rel"
        fi
    done <"$STATE/manifest"
    rm -rf "$STATE"
    prune "$PREFIX"
    say "removed the release from $PREFIX"
    say "kept the data in $DATA, the logs in $LOGS and the user $RUNAS"
}

case $ACTION in
    install) install_release ;;
    uninstall) uninstall_release ;;
esac
