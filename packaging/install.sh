#!/bin/sh
# Install this portable-redis release on this host, or remove it.
#
#   ./install.sh [--prefix DIR] [--init systemd|sysv|none]
#   DIR/install.sh --uninstall [--prefix DIR]
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
umask 022
# su without a login shell leaves the sbin folders out (SUSE 11).
PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

PREFIX=
ACTION=install
INIT=
DATA=/var/lib/portable-redis
LOGS=/var/log/portable-redis
RUNDIR=/var/run/portable-redis
RUNAS=redis
# The services a release carries; only redis-server is enabled at boot.
SERVICES="redis-server redis-sentinel"
CONFIGS="etc/redis.conf etc/sentinel.conf"

say() { echo "install.sh: $*"; }
die() {
    echo "install.sh: $*" >&2
    exit 1
}
usage() {
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
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

SRC=$(cd "$(dirname "$0")" && pwd -P) || die "cannot find the release folder"
if [ -z "$PREFIX" ]; then
    # The installed copy removes the install it belongs to.
    if [ -f "$SRC/share/portable-redis/manifest" ]; then
        PREFIX=$SRC
    else
        PREFIX=/opt/portable-redis
    fi
fi
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
# A release for another machine (aarch64 on x86_64) or a host below the
# release's floor is refused before anything is written (and before the
# root check, so anyone learns it).
if [ "$ACTION" = install ]; then
    rc=0
    said=$("$SRC/bin/redis-server" --version 2>&1) || rc=$?
    case $rc in
        0) ;;
        126) die "$SRC/bin/redis-server cannot be run here: $said. 'Exec format error' means a release for another machine: take the one built for this $(uname -m) host (its README says what it runs on); 'Permission denied' means $SRC forbids running programs (a noexec mount): unpack the release elsewhere" ;;
        *) die "$SRC/bin/redis-server does not start on this $(uname -m) host: $said. Take the release built for it (its README says what it runs on)" ;;
    esac
fi
[ "$(id -u)" = 0 ] || die "run as root (it creates a user and installs service files)"

STATE=$PREFIX/share/portable-redis
CHANGED=0
FILES=0

changed() {
    CHANGED=$((CHANGED + 1))
    say "$*"
}

# A file of the release copied into or removed from the prefix (counted,
# said once at the end).
file_changed() {
    CHANGED=$((CHANGED + 1))
    FILES=$((FILES + 1))
}

# copy SRC DEST MODE [OWNER]: DEST becomes a copy of SRC unless it already
# is one; returns 1 when nothing changed. The copy is made in $STATE (root's
# alone), given its mode and owner there, then renamed onto DEST (-T: a link
# at DEST is replaced, never followed), so nothing is written through a path
# the redis user can change.
copy() {
    if [ -f "$2" ] && [ ! -h "$2" ] && cmp -s "$1" "$2"; then
        return 1
    fi
    if [ -d "$2" ] && [ ! -h "$2" ]; then
        die "$2 is a folder; move it away"
    fi
    [ -d "$(dirname "$2")" ] || mkdir -p "$(dirname "$2")" || die "cannot create $(dirname "$2")"
    tmp=$STATE/.copy.$$
    rm -f "$tmp"
    if ! { cp "$1" "$tmp" && chmod "$3" "$tmp" && chown "${4:-root:root}" "$tmp" &&
        mv -f -T "$tmp" "$2"; }; then
        rm -f "$tmp"
        die "cannot write $2"
    fi
    return 0
}

own() {
    if ! { chmod "$2" "$1" && chown "$3" "$1"; }; then
        die "cannot set the owner and mode of $1"
    fi
}

# folder DIR MODE OWNER: create it, or set what differs (and say so). A
# link to a folder is the admin's (each parent is root's) and is followed.
folder() {
    if [ ! -d "$1" ]; then
        mkdir -p "$1" || die "cannot create $1"
        own "$1" "$2" "$3"
        changed "created $1"
    else
        # The permission bits only: a setgid bit from the parent stays.
        now=$(stat -L -c '%a' "$1")
        now=${now#"${now%???}"}
        if [ "$now $(stat -L -c '%U:%G' "$1")" != "$2 $3" ]; then
            own "$1" "$2" "$3"
            changed "set $1 to mode $2, owner $3"
        fi
    fi
}

# Whether a folder between PREFIX and PATH is a link (a path through the
# redis-owned etc/ that root must not follow).
through_link() {
    d=$(dirname "$1")
    while [ "$d" != "$PREFIX" ] && [ "${d#"$PREFIX"/}" != "$d" ]; do
        [ -h "$d" ] && return 0
        d=$(dirname "$d")
    done
    return 1
}

# Remove the folders below PREFIX that PATH's removal left empty.
prune_up() {
    d=$(dirname "$1")
    while [ "$d" != "$PREFIX" ] && [ "${d#"$PREFIX"/}" != "$d" ]; do
        rmdir "$d" 2>/dev/null || break
        d=$(dirname "$d")
    done
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

service_dest() {
    case $2 in
        systemd) echo "/etc/systemd/system/$1.service" ;;
        sysv) echo "$(initdir)/$1" ;;
    esac
}

# The release's service file for SERVICE and INIT with the prefix in it,
# written to $STATE/.service.$$.
render() {
    case $2 in
        systemd) f=$SRC/lib/systemd/system/$1.service ;;
        sysv) f=$SRC/etc/init.d/$1 ;;
    esac
    sed "s|/opt/portable-redis|$PREFIX|g" "$f" >"$STATE/.service.$$" || die "cannot read $f"
}

# The init system and services the install in PREFIX set up: "INIT S1 S2".
recorded_services() {
    [ -f "$STATE/services" ] && cat "$STATE/services"
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

# The release's files for the prefix, relative to its folder (install.sh
# included; the SysV scripts go to /etc/init.d only).
release_files() {
    (cd "$SRC" && find . \( -type f -o -type l \) | sed 's|^\./||' |
        grep -v -e '^etc/init\.d/' -e '^share/portable-redis/' | LC_ALL=C sort)
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
    # Only a regular file is compared (a fifo would block cmp); anything
    # else there counts as an edit.
    plain=no
    [ -f "$dest" ] && [ ! -h "$dest" ] && plain=yes
    if [ ! -e "$dest" ] && [ ! -h "$dest" ]; then
        copy "$new" "$dest" 640 "$RUNAS:$RUNAS"
        changed "installed $dest"
    elif [ $plain = yes ] && cmp -s "$new" "$dest"; then
        :
    elif [ $plain = yes ] && [ -f "$pristine" ] && cmp -s "$dest" "$pristine"; then
        copy "$new" "$dest" 640 "$RUNAS:$RUNAS"
        changed "updated $dest (it was not edited here)"
    elif [ -f "$pristine" ] && cmp -s "$new" "$pristine"; then
        say "kept $dest (edited here)"
    elif [ -e "$dest.new" ] && [ ! -h "$dest.new" ] && [ ! -f "$dest.new" ]; then
        say "kept $dest (edited here); $dest.new is not a file, so this release's version is in $new"
    elif copy "$new" "$dest.new" 640 "$RUNAS:$RUNAS"; then
        changed "kept $dest (edited here); this release's version is $dest.new: merge what you need, then remove it"
    else
        say "kept $dest (edited here); this release's version is still in $dest.new"
    fi
    copy "$new" "$pristine" 644 || :
}

install_release() {
    init=$(detect_init)
    for f in $CONFIGS bin/redis-server; do
        [ -e "$SRC/$f" ] || die "$SRC is not a portable-redis release: $f is missing"
    done
    if [ -f "$SRC/share/portable-redis/manifest" ]; then
        die "this is the installed copy in $SRC: install or upgrade with the install.sh of an unpacked release; this one only does --uninstall"
    fi
    if [ ! -f "$STATE/manifest" ] && [ -d "$PREFIX" ] && [ -n "$(ls -A "$PREFIX")" ]; then
        die "$PREFIX holds files but no portable-redis install ($STATE/manifest): choose a new or empty folder with --prefix"
    fi
    recorded=$(recorded_services) || recorded=
    if [ -n "$recorded" ] && [ "${recorded%% *}" != "$init" ]; then
        die "$PREFIX was installed for init '${recorded%% *}', this host looks like '$init': pass --init ${recorded%% *}, or --uninstall first"
    fi
    if [ "$init" != none ]; then
        for s in $SERVICES; do
            dest=$(service_dest "$s" "$init")
            case " $recorded " in
                *" $s "*) ;;
                *) if [ -e "$dest" ] || [ -h "$dest" ]; then
                    die "$dest exists and was not installed into $PREFIX (another package's, or another prefix's): remove it, or install with --init none"
                fi ;;
            esac
        done
    fi

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
    folder "$PREFIX/share" 755 root:root
    folder "$STATE" 755 root:root
    # Sentinel and CONFIG REWRITE write here.
    folder "$PREFIX/etc" 750 "$RUNAS:$RUNAS"
    folder "$DATA" 750 "$RUNAS:$RUNAS"
    folder "$LOGS" 750 "$RUNAS:$RUNAS"
    folder "$RUNDIR" 755 "$RUNAS:$RUNAS"

    list=$STATE/.release-files.$$
    release_files >"$list" || die "cannot list $SRC"
    # Recorded before anything is copied, so a run stopped half-way can be
    # run again or uninstalled: every file it may have written, and the
    # services it may have installed.
    if [ -f "$STATE/manifest" ]; then
        sort -u "$STATE/manifest" "$list" >"$STATE/.both.$$"
    else
        cp "$list" "$STATE/.both.$$"
    fi
    copy "$STATE/.both.$$" "$STATE/manifest" 644 || :
    rm -f "$STATE/.both.$$"
    if [ "$init" != none ] && [ -z "$recorded" ]; then
        echo "$init $SERVICES" >"$STATE/.services.$$"
        copy "$STATE/.services.$$" "$STATE/services" 644 || :
        rm -f "$STATE/.services.$$"
    fi
    # The release's folders: root's, readable by all (a folder an earlier
    # umask made 750 is set back).
    sed -n 's|/[^/]*$||p' "$list" | grep -v '^etc$' | LC_ALL=C sort -u >"$STATE/.folders.$$"
    while read -r d; do
        folder "$PREFIX/$d" 755 root:root
    done <"$STATE/.folders.$$"
    rm -f "$STATE/.folders.$$"
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
    done <"$list"
    # Files of an earlier release that this one no longer has.
    if [ -f "$STATE/manifest" ]; then
        while read -r rel; do
            if ! grep -qxF "$rel" "$list" && ! is_config "$rel" && ! through_link "$PREFIX/$rel" &&
                { [ -e "$PREFIX/$rel" ] || [ -h "$PREFIX/$rel" ]; }; then
                rm -f "$PREFIX/$rel"
                prune_up "$PREFIX/$rel"
                file_changed
            fi
        done <"$STATE/manifest"
    fi
    copy "$list" "$STATE/manifest" 644 || :
    rm -f "$list"

    services=
    if [ "$init" != none ]; then
        reload=no
        enable=no
        for s in $SERVICES; do
            render "$s" "$init"
            dest=$(service_dest "$s" "$init")
            mode=644
            [ "$init" = sysv ] && mode=755
            # Only redis-server starts at boot, and only when first
            # installed (an admin's later choice stays); Sentinel needs a
            # configuration first.
            [ "$s" = redis-server ] && [ ! -e "$dest" ] && enable=yes
            if copy "$STATE/.service.$$" "$dest" $mode; then
                # Made in the prefix: the folder's SELinux label, not the prefix's.
                if command -v restorecon >/dev/null 2>&1; then restorecon "$dest"; fi
                changed "installed $dest"
                reload=yes
            fi
            rm -f "$STATE/.service.$$"
            services="$services $s"
        done
        [ "$init" = systemd ] && [ $reload = yes ] && systemctl daemon-reload
        [ $enable = yes ] && register redis-server "$init"
    fi
    echo "$init$services" >"$STATE/.services.$$"
    copy "$STATE/.services.$$" "$STATE/services" 644 || :
    rm -f "$STATE/.services.$$"

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
    [ -f "$STATE/manifest" ] || die "nothing to remove: $STATE/manifest is missing (no release installed in $PREFIX; name it with --prefix)"
    recorded=$(recorded_services) || recorded=
    init=${recorded%% *}
    for s in ${recorded#"$init"}; do
        dest=$(service_dest "$s" "$init")
        if [ -e "$dest" ]; then
            unregister "$s" "$init"
            rm -f "$dest"
            say "removed $dest"
        fi
    done
    [ "$init" = systemd ] && systemctl daemon-reload
    while read -r rel; do
        if through_link "$PREFIX/$rel"; then
            say "left $PREFIX/$rel: a folder on its path is a link"
        elif is_config "$rel"; then
            if [ ! -h "$PREFIX/$rel" ] && [ -f "$STATE/pristine/$rel" ] &&
                cmp -s "$PREFIX/$rel" "$STATE/pristine/$rel"; then
                rm -f "$PREFIX/$rel"
            elif [ -e "$PREFIX/$rel" ] || [ -h "$PREFIX/$rel" ]; then
                say "kept $PREFIX/$rel (edited here)"
            fi
            rm -f "$PREFIX/$rel.new"
        else
            rm -f "$PREFIX/$rel"
        fi
        prune_up "$PREFIX/$rel"
    done <"$STATE/manifest"
    rm -rf "$STATE"
    prune_up "$STATE"
    rmdir "$PREFIX" 2>/dev/null
    say "removed the release from $PREFIX"
    say "kept the data in $DATA, the logs in $LOGS and the user $RUNAS"
}

case $ACTION in
    install) install_release ;;
    uninstall) uninstall_release ;;
esac
