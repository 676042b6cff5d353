#!/bin/sh
# Install chargepoint as a systemd service on Raspberry Pi OS Bookworm (Debian 12).
#
#   sudo systemd/install.sh                      install, or upgrade in place (run it again any time)
#   sudo systemd/install.sh --uninstall          remove the service and /opt/chargepoint;
#                                                keep /etc/chargepoint and /var/lib/chargepoint
#   sudo systemd/install.sh --uninstall --purge  also remove the configuration, the state and the user
#
# What it does (each step only if not done yet):
#   - apt-get: python3-venv (and python3-lgpio for gpiozero on the Pi, if the archive has it)
#   - the system user and group "chargepoint" (systemd-sysusers; /usr/lib/sysusers.d/chargepoint.conf),
#     and the groups gpio, i2c, dialout where missing; the user who ran sudo joins group chargepoint
#     (the CLI needs it for the control socket)
#   - a venv in /opt/chargepoint/venv with this checkout installed into it
#   - /etc/chargepoint/chargepoint.toml from examples/raspberrypi.toml if there is none (never
#     overwritten), and the annotated examples/chargepoint.toml as chargepoint.toml.example
#   - /etc/systemd/system/chargepoint.service, enabled; restarted if it was running (an upgrade)
#   - firmware updates: /opt/chargepoint/venvs (the daemon's, for new versions) with the `current` link
#     the service starts through, set to this install's venv (an install by hand ends any trial); the
#     firmware guard /opt/chargepoint/firmware-guard and chargepoint-firmware-guard.timer, enabled
#   - the SoC's hardware watchdog for the whole system: /etc/systemd/system.conf.d/chargepoint-watchdog.conf
#     (RuntimeWatchdogSec), so a hung kernel or systemd resets the board, with every GPIO an input
#     and the contactor de-energised (hardware.md, Hardware fail-safe)
#
# DESTDIR=/some/dir stages everything under that directory instead: nothing on this machine is
# touched outside it (no apt-get, systemd-sysusers, useradd, usermod, chown or systemctl; the unit is
# enabled by creating the symlink systemctl would). The tests use it; the venv inside refers to its
# staged path, so a staged tree is for inspection, not for copying to a station.
#
# Environment: DESTDIR, PYTHON (default python3), PACKAGE (what to pip install: default this
# checkout; or a built wheel), PIP_ARGS (extra `pip install` arguments, e.g. "--no-index
# --find-links /media/usb/wheels" on a station without internet), NO_APT=1.
set -eu
# The venv is the service's own: the caller's Python environment must not leak into it.
unset PYTHONPATH PYTHONHOME PIP_TARGET PIP_PREFIX

SRC=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PYTHON=${PYTHON:-python3}
PIP_ARGS=${PIP_ARGS:-}
PACKAGE=${PACKAGE:-$SRC}
NAME=chargepoint
PREFIX=/opt/chargepoint
UNIT_DIR=/etc/systemd/system
SYSUSERS=/usr/lib/sysusers.d/chargepoint.conf
WATCHDOG_CONF=/etc/systemd/system.conf.d/chargepoint-watchdog.conf

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
staged() { [ -n "$DESTDIR" ]; }

uninstall=0
purge=0
for arg in "$@"; do
    case "$arg" in
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) die "unknown argument $arg (see --help)" ;;
    esac
done
[ "$purge" = 1 ] && [ "$uninstall" = 0 ] && die "--purge goes with --uninstall"

if ! staged && [ "$(id -u)" != 0 ]; then
    die "run it as root (sudo $0), or set DESTDIR to stage into a directory"
fi
if staged; then
    DESTDIR=$(mkdir -p "$DESTDIR" && cd "$DESTDIR" && pwd)
    say "staging into $DESTDIR (this machine is not changed)"
fi

# ---------------------------------------------------------------------------------- uninstall
if [ "$uninstall" = 1 ]; then
    if ! staged && command -v systemctl >/dev/null && [ -f "$UNIT_DIR/$NAME.service" ]; then
        systemctl disable --now "$NAME.service" "$NAME-firmware-guard.timer" || true
    fi
    rm -f "$DESTDIR/etc/systemd/system/multi-user.target.wants/$NAME.service"
    rm -f "$DESTDIR$UNIT_DIR/timers.target.wants/$NAME-firmware-guard.timer"
    rm -f "$DESTDIR$UNIT_DIR/$NAME.service" "$DESTDIR$WATCHDOG_CONF"
    rm -f "$DESTDIR$UNIT_DIR/$NAME-firmware-guard.service" "$DESTDIR$UNIT_DIR/$NAME-firmware-guard.timer"
    ! staged && command -v systemctl >/dev/null && systemctl daemon-reload || true
    rm -rf "$DESTDIR$PREFIX"
    say "removed the service and $PREFIX"
    if [ "$purge" = 1 ]; then
        rm -rf "$DESTDIR/etc/$NAME" "$DESTDIR/var/lib/$NAME" "$DESTDIR$SYSUSERS"
        if ! staged; then
            getent passwd "$NAME" >/dev/null && userdel "$NAME"
            getent group "$NAME" >/dev/null && groupdel "$NAME"
        fi
        if staged; then  # no userdel here: the machine's users are not the staging root's
            say "purged /etc/$NAME, /var/lib/$NAME and the sysusers.d entry under $DESTDIR (no user was removed)"
        else
            say "purged /etc/$NAME, /var/lib/$NAME and the user $NAME"
        fi
    else
        say "kept /etc/$NAME and /var/lib/$NAME (--purge removes them and the user)"
    fi
    exit 0
fi

# ------------------------------------------------------------------------------- packages
if ! staged && [ -z "${NO_APT:-}" ] && command -v apt-get >/dev/null; then
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        say "installing python3-venv"
        apt-get update -q && apt-get install -y -q python3-venv
    fi
    if ! "$PYTHON" -c 'import lgpio' 2>/dev/null; then
        apt-get install -y -q python3-lgpio 2>/dev/null \
            || say "python3-lgpio not in the archive (fine off a Raspberry Pi)"
    fi
fi

# --------------------------------------------------------------------------- user and groups
install -d -m 0755 "$DESTDIR/usr/lib/sysusers.d"
cat > "$DESTDIR$SYSUSERS" <<'EOF'
# chargepoint: the service's user (see /etc/systemd/system/chargepoint.service), and the
# device groups its unit asks for (Raspberry Pi OS has them already).
u chargepoint - "chargepoint EV charging station controller" /var/lib/chargepoint /usr/sbin/nologin
g gpio -
g i2c -
g dialout -
EOF
if ! staged; then
    if command -v systemd-sysusers >/dev/null; then
        systemd-sysusers "$SYSUSERS"
    else
        getent group "$NAME" >/dev/null || groupadd --system "$NAME"
        getent passwd "$NAME" >/dev/null || useradd --system --gid "$NAME" --no-create-home \
            --home-dir "/var/lib/$NAME" --shell /usr/sbin/nologin "$NAME"
        for group in gpio i2c dialout; do
            getent group "$group" >/dev/null || groupadd --system "$group"
        done
    fi
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && ! id -nG "$SUDO_USER" | grep -qw "$NAME"; then
        usermod -aG "$NAME" "$SUDO_USER"
        say "added $SUDO_USER to group $NAME (log in again for the chargepoint CLI)"
    fi
fi

# ------------------------------------------------------------------------------------ venv
VENV="$DESTDIR$PREFIX/venv"
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $PREFIX/venv"
    # System site packages: Raspberry Pi OS's python3-lgpio is gpiozero's pin factory on the Pi.
    "$PYTHON" -m venv --system-site-packages "$VENV"
fi
say "installing chargepoint from $PACKAGE into $PREFIX/venv"
# shellcheck disable=SC2086 # PIP_ARGS is a list of arguments
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade $PIP_ARGS "$PACKAGE"
install -m 0644 "$SRC/README.md" "$DESTDIR$PREFIX/README.md"

# ------------------------------------------------------------------------ firmware updates
# The service starts venvs/current; updates from the CSMS add venvs/<version> and switch the link,
# and the guard (a plain script for the system's Python) switches back a version that does not boot.
VENVS="$DESTDIR$PREFIX/venvs"
install -d -m 0755 "$VENVS"
ln -sfn ../venv "$VENVS/.current.new"
mv -T "$VENVS/.current.new" "$VENVS/current"
rm -f "$DESTDIR/var/lib/$NAME/firmware/trial.json"
GUARD="$DESTDIR$PREFIX/firmware-guard"
{ printf '#!%s\n' "$(command -v "$PYTHON")"; cat "$SRC/chargepoint/core/firmware/trial.py"; } > "$GUARD"
chmod 0755 "$GUARD"
if ! staged; then
    chown -R "$NAME:$NAME" "$VENVS"
fi

# ---------------------------------------------------------------------------- configuration
CONF="$DESTDIR/etc/$NAME"
install -d -m 0750 "$CONF"
if [ ! -e "$CONF/chargepoint.toml" ]; then
    install -m 0640 "$SRC/examples/raspberrypi.toml" "$CONF/chargepoint.toml"
    say "wrote /etc/$NAME/chargepoint.toml from examples/raspberrypi.toml: set station.identity and ocpp.csms_url"
else
    say "kept /etc/$NAME/chargepoint.toml"
fi
install -m 0640 "$SRC/examples/chargepoint.toml" "$CONF/chargepoint.toml.example"
if ! staged; then
    chown -R "root:$NAME" "$CONF"
fi

# ------------------------------------------------------------------------------------ unit
install -d -m 0755 "$DESTDIR$UNIT_DIR"
install -m 0644 "$SRC/systemd/$NAME.service" "$DESTDIR$UNIT_DIR/$NAME.service"
for unit in "$NAME-firmware-guard.service" "$NAME-firmware-guard.timer"; do
    install -m 0644 "$SRC/systemd/$unit" "$DESTDIR$UNIT_DIR/$unit"
done

# The hardware watchdog: systemd (PID 1) feeds /dev/watchdog; if the kernel or systemd hangs, the
# SoC resets the board. RebootWatchdogSec bounds a reboot that itself hangs.
install -d -m 0755 "$DESTDIR$(dirname "$WATCHDOG_CONF")"
cat > "$DESTDIR$WATCHDOG_CONF" <<'EOF'
# Written by chargepoint's install.sh: the SoC's hardware watchdog for the whole system.
[Manager]
RuntimeWatchdogSec=15
RebootWatchdogSec=2min
EOF
if staged; then
    install -d -m 0755 "$DESTDIR$UNIT_DIR/multi-user.target.wants"
    ln -sfn "$UNIT_DIR/$NAME.service" "$DESTDIR$UNIT_DIR/multi-user.target.wants/$NAME.service"
    install -d -m 0755 "$DESTDIR$UNIT_DIR/timers.target.wants"
    ln -sfn "$UNIT_DIR/$NAME-firmware-guard.timer" "$DESTDIR$UNIT_DIR/timers.target.wants/$NAME-firmware-guard.timer"
    say "staged and enabled $NAME.service"
    exit 0
fi
systemctl daemon-reexec  # the manager reads RuntimeWatchdogSec (system.conf.d) when it starts
systemctl daemon-reload
systemctl enable "$NAME.service"
systemctl enable --now "$NAME-firmware-guard.timer"
if systemctl is-active --quiet "$NAME.service"; then
    systemctl restart "$NAME.service"
    say "upgraded and restarted $NAME.service"
else
    say "enabled $NAME.service; after editing /etc/$NAME/chargepoint.toml: sudo systemctl start $NAME"
fi
