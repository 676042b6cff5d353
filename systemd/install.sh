#!/bin/sh
# Install chargepoint as systemd services on Raspberry Pi OS Bookworm (Debian 12).
#
#   sudo systemd/install.sh                      install, or upgrade in place (run it again any time)
#   sudo systemd/install.sh --uninstall          remove the services and /opt/chargepoint;
#                                                keep /etc/chargepoint and /var/lib/chargepoint
#   sudo systemd/install.sh --uninstall --purge  also remove the configuration, the state and the users
#
# Two services run a station: chargepoint-safety.service (`chargepoint supervise`, user
# chargepoint-hw: the safety loop, the only process with GPIO, PWM, I2C and SPI) and
# chargepoint.service (`chargepoint run`, user chargepoint: network, state database, meters, RFID,
# no device access but the serial ports). See README.md, "Running under systemd".
#
# What it does (each step only if not done yet):
#   - apt-get: python3-venv (and python3-lgpio for gpiozero on the Pi, if the archive has it)
#   - the system user and group "chargepoint" in group dialout (systemd-sysusers;
#     /usr/lib/sysusers.d/chargepoint.conf); the user who ran sudo joins group chargepoint (the CLI
#     needs it for the control socket)
#   - the system user and group "chargepoint-hw" in groups gpio, i2c, spi and chargepoint (the
#     configuration); /usr/lib/sysusers.d/chargepoint-hw.conf. Missing groups are created.
#   - a station installed before the supervisor existed (one process, user chargepoint in gpio, i2c):
#     the user chargepoint leaves groups gpio, i2c and spi
#   - a venv in /opt/chargepoint/venv with this checkout installed into it
#   - /etc/chargepoint/chargepoint.toml from examples/raspberrypi.toml if there is none (never
#     overwritten), and the annotated examples/chargepoint.toml as chargepoint.toml.example
#   - /etc/systemd/system/chargepoint-safety.service and chargepoint.service, both enabled. If either
#     was running (an upgrade), the daemon is stopped first (on a one-process station it holds the
#     GPIOs; its old unit makes the outputs safe), then the supervisor is (re)started, then the daemon
#   - firmware updates: /opt/chargepoint/venvs (the daemon's, for new versions) with the `current` link
#     both services start through, set to this install's venv (an install by hand ends any trial); the
#     firmware guard /opt/chargepoint/firmware-guard and chargepoint-firmware-guard.timer, enabled
#   - the SoC's hardware watchdog for the whole system: /etc/systemd/system.conf.d/chargepoint-watchdog.conf
#     (RuntimeWatchdogSec), so a hung kernel or systemd resets the board, with every GPIO an input
#     and the contactor de-energised (hardware.md, Hardware fail-safe)
#
# DESTDIR=/some/dir stages everything under that directory instead: nothing on this machine is
# touched outside it (no apt-get, systemd-sysusers, useradd, usermod, gpasswd, chown or systemctl; the
# units are enabled by creating the symlinks systemctl would). The tests use it; the venv inside refers to its
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
SAFETY=chargepoint-safety       # the supervisor's unit
HW_USER=chargepoint-hw          # the supervisor's user: GPIO, PWM, I2C, SPI
HW_GROUPS="gpio i2c spi"
PREFIX=/opt/chargepoint
UNIT_DIR=/etc/systemd/system
SYSUSERS=/usr/lib/sysusers.d/chargepoint.conf
SYSUSERS_HW=/usr/lib/sysusers.d/chargepoint-hw.conf
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
        -h|--help) sed -n '/^set -eu$/q; 2,$p' "$0"; exit 0 ;;
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
    if ! staged && command -v systemctl >/dev/null \
            && { [ -f "$UNIT_DIR/$NAME.service" ] || [ -f "$UNIT_DIR/$SAFETY.service" ]; }; then
        # One transaction: systemd stops the daemon before the supervisor (After=).
        systemctl disable --now "$NAME.service" "$SAFETY.service" "$NAME-firmware-guard.timer" || true
    fi
    rm -f "$DESTDIR$UNIT_DIR/multi-user.target.wants/$NAME.service"
    rm -f "$DESTDIR$UNIT_DIR/multi-user.target.wants/$SAFETY.service"
    rm -f "$DESTDIR$UNIT_DIR/timers.target.wants/$NAME-firmware-guard.timer"
    rm -f "$DESTDIR$UNIT_DIR/$NAME.service" "$DESTDIR$UNIT_DIR/$SAFETY.service" "$DESTDIR$WATCHDOG_CONF"
    rm -f "$DESTDIR$UNIT_DIR/$NAME-firmware-guard.service" "$DESTDIR$UNIT_DIR/$NAME-firmware-guard.timer"
    ! staged && command -v systemctl >/dev/null && systemctl daemon-reload || true
    rm -rf "$DESTDIR$PREFIX"
    say "removed the services and $PREFIX"
    if [ "$purge" = 1 ]; then
        rm -rf "$DESTDIR/etc/$NAME" "$DESTDIR/var/lib/$NAME" "$DESTDIR$SYSUSERS" "$DESTDIR$SYSUSERS_HW"
        if ! staged; then
            # The supervisor's user first: it is a member of group chargepoint.
            getent passwd "$HW_USER" >/dev/null && userdel "$HW_USER"
            getent group "$HW_USER" >/dev/null && groupdel "$HW_USER"
            getent passwd "$NAME" >/dev/null && userdel "$NAME"
            getent group "$NAME" >/dev/null && groupdel "$NAME"
        fi
        if staged; then  # no userdel here: the machine's users are not the staging root's
            say "purged /etc/$NAME, /var/lib/$NAME and the sysusers.d entries under $DESTDIR (no user was removed)"
        else
            say "purged /etc/$NAME, /var/lib/$NAME and the users $NAME and $HW_USER"
        fi
    else
        say "kept /etc/$NAME and /var/lib/$NAME (--purge removes them and the users)"
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
# chargepoint: the daemon's user (see /etc/systemd/system/chargepoint.service), and the
# group of the serial ports its unit asks for (meters, RFID; Raspberry Pi OS has it already).
u chargepoint - "chargepoint EV charging station controller" /var/lib/chargepoint /usr/sbin/nologin
g dialout -
EOF
cat > "$DESTDIR$SYSUSERS_HW" <<'EOF'
# chargepoint-hw: the safety supervisor's user (see /etc/systemd/system/chargepoint-safety.service),
# the only one with the station's safety hardware: gpio (/dev/gpiochip*, the exported PWM channel),
# i2c (/dev/i2c-*), spi (/dev/spidev*); and group chargepoint, to read /etc/chargepoint.
u chargepoint-hw - "chargepoint safety supervisor" - /usr/sbin/nologin
g gpio -
g i2c -
g spi -
m chargepoint-hw gpio
m chargepoint-hw i2c
m chargepoint-hw spi
m chargepoint-hw chargepoint
EOF
if ! staged; then
    if command -v systemd-sysusers >/dev/null; then
        systemd-sysusers "$SYSUSERS" "$SYSUSERS_HW"
    else
        getent group "$NAME" >/dev/null || groupadd --system "$NAME"
        getent passwd "$NAME" >/dev/null || useradd --system --gid "$NAME" --no-create-home \
            --home-dir "/var/lib/$NAME" --shell /usr/sbin/nologin "$NAME"
        getent group "$HW_USER" >/dev/null || groupadd --system "$HW_USER"
        getent passwd "$HW_USER" >/dev/null || useradd --system --gid "$HW_USER" --no-create-home \
            --home-dir / --shell /usr/sbin/nologin "$HW_USER"
        for group in $HW_GROUPS dialout; do
            getent group "$group" >/dev/null || groupadd --system "$group"
        done
        usermod -aG "$(echo "$HW_GROUPS $NAME" | tr ' ' ',')" "$HW_USER"
    fi
    # A station installed before the supervisor existed gave the daemon's user the devices: take
    # them away (sysusers only ever adds members). The running daemon keeps its groups until it
    # is stopped below.
    for group in $HW_GROUPS; do
        if id -nG "$NAME" | tr ' ' '\n' | grep -qx "$group"; then
            if command -v gpasswd >/dev/null; then
                gpasswd -d "$NAME" "$group" >/dev/null
            else
                deluser "$NAME" "$group" >/dev/null
            fi
            say "removed the user $NAME from group $group (the devices are $HW_USER's now)"
        fi
    done
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
# An install by hand ends any trial; never through a link (the state directory is the service user's).
if [ ! -L "$DESTDIR/var/lib/$NAME/firmware" ]; then
    rm -f "$DESTDIR/var/lib/$NAME/firmware/trial.json"
fi
GUARD="$DESTDIR$PREFIX/firmware-guard"
{ printf '#!%s\n' "$(command -v "$PYTHON")"; cat "$SRC/chargepoint/core/firmware/trial.py"; } > "$GUARD"
chmod 0755 "$GUARD"
if ! staged; then
    # The daemon installs firmware updates here. The supervisor runs the venv above, which stays root's
    # (chown -R does not follow the current link): nothing the daemon writes runs with device access.
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

# ----------------------------------------------------------------------------------- units
# An upgrade: stop the daemon before its unit is replaced. On a one-process station it holds the
# GPIOs, which the supervisor cannot open while it does, and its old unit's ExecStopPost= makes
# the outputs safe (with the safe-off just installed).
restart=0
if ! staged && command -v systemctl >/dev/null; then
    if systemctl is-active --quiet "$NAME.service" || systemctl is-active --quiet "$SAFETY.service"; then
        restart=1
        systemctl stop "$NAME.service"
    fi
fi
install -d -m 0755 "$DESTDIR$UNIT_DIR"
for unit in "$SAFETY.service" "$NAME.service" "$NAME-firmware-guard.service" "$NAME-firmware-guard.timer"; do
    install -m 0644 "$SRC/systemd/$unit" "$DESTDIR$UNIT_DIR/$unit"
done

# The hardware watchdog: systemd (PID 1) feeds /dev/watchdog; if the kernel or systemd hangs, the
# SoC resets the board. RebootWatchdogSec bounds a reboot that itself hangs. Both stay within the
# bcm2835 watchdog's longest timeout, about 15 s: a longer value is not what the SoC does.
install -d -m 0755 "$DESTDIR$(dirname "$WATCHDOG_CONF")"
cat > "$DESTDIR$WATCHDOG_CONF" <<'EOF'
# Written by chargepoint's install.sh: the SoC's hardware watchdog for the whole system.
[Manager]
RuntimeWatchdogSec=15
RebootWatchdogSec=15
EOF
if staged; then
    install -d -m 0755 "$DESTDIR$UNIT_DIR/multi-user.target.wants"
    for unit in "$SAFETY.service" "$NAME.service"; do
        ln -sfn "$UNIT_DIR/$unit" "$DESTDIR$UNIT_DIR/multi-user.target.wants/$unit"
    done
    install -d -m 0755 "$DESTDIR$UNIT_DIR/timers.target.wants"
    ln -sfn "$UNIT_DIR/$NAME-firmware-guard.timer" "$DESTDIR$UNIT_DIR/timers.target.wants/$NAME-firmware-guard.timer"
    say "staged and enabled $SAFETY.service and $NAME.service"
    exit 0
fi
systemctl daemon-reexec  # the manager reads RuntimeWatchdogSec (system.conf.d) when it starts
systemctl daemon-reload
systemctl enable "$SAFETY.service" "$NAME.service"
systemctl enable --now "$NAME-firmware-guard.timer"
if [ "$restart" = 1 ]; then
    # The supervisor first (its new version, its new user), then the daemon, which needs it.
    systemctl restart "$SAFETY.service"
    systemctl start "$NAME.service"
    say "upgraded and restarted $SAFETY.service and $NAME.service"
else
    say "enabled $SAFETY.service and $NAME.service; after editing /etc/$NAME/chargepoint.toml:" \
        "sudo systemctl start $NAME (starts the supervisor too)"
fi
