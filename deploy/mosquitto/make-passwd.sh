#!/bin/sh
# The broker's password files in the mosquitto-auth volume (never in the repository):
#   services.passwd  the services' listener (1883): gulou-ingest, gulou-rules, gulou-sim, gulou-alerts,
#                    gulou-health; rebuilt from the environment on every `services` run
#   devices.passwd   the devices' listener (8883): one user per device, username = registry device id
#
#   make-passwd.sh services              service users from the environment (.env), see below, and the
#                                        broker's TLS certificate and key from GULOU_TLS_DIR (/deploy/certs)
#   make-passwd.sh add DEVICE...         prompt on the terminal for each device's password
#   make-passwd.sh import < FILE         "device_id:password" lines (e.g. from the provisioning system)
#   make-passwd.sh delete DEVICE...      remove devices
#
# Passwords come from the environment (GULOU_INGEST_PASSWORD, or GULOU_INGEST_PASSWORD_FILE naming a file
# that holds it; likewise RULES, SIM, ALERTS), from standard input or from the terminal, and reach
# mosquitto_passwd through a pipe: never through a command line, where any local user could read them.
# The directory is /mosquitto/auth, or GULOU_MOSQUITTO_AUTH_DIR. After a change: docker compose kill -s HUP
# mosquitto (reloads the password files without dropping connections).
set -eu

AUTH_DIR="${GULOU_MOSQUITTO_AUTH_DIR:-/mosquitto/auth}"
SERVICES="$AUTH_DIR/services.passwd"
DEVICES="$AUTH_DIR/devices.passwd"
# mosquitto_sub reads its default options from $XDG_CONFIG_HOME/mosquitto_sub: the broker's health check
# finds its credentials there instead of on its command line.
HEALTH_DIR="$AUTH_DIR/health"
# Mosquitto reads its certificate and key after switching to its own user: they are copied into the volume
# with that owner, whatever the owner of the files made on the host.
TLS_SOURCE="${GULOU_TLS_DIR:-/deploy/certs}"
TLS_DIR="$AUTH_DIR/tls"
umask 077
mkdir -p "$AUTH_DIR" "$HEALTH_DIR"
[ -f "$DEVICES" ] || : > "$DEVICES"

die() {
    echo "make-passwd: $*" >&2
    exit 1
}

# The value of the variable named $1, else the content of the file named by ${1}_FILE, else "".
secret() {
    eval "value=\${$1:-}"
    eval "file=\${$1_FILE:-}"
    if [ -z "$value" ] && [ -n "$file" ]; then
        [ -r "$file" ] || die "$1_FILE: cannot read $file"
        value=$(cat "$file")
    fi
    printf '%s' "$value"
}

# mosquitto_passwd rewrites the file line by line: a last line without a newline would be lost or merged.
end_with_newline() {
    if [ -s "$1" ] && [ -n "$(tail -c 1 "$1")" ]; then
        printf '\n' >> "$1"
    fi
}

# set_password FILE USER PASSWORD: the password goes through a pipe (printf is a shell builtin).
set_password() {
    [ -n "$2" ] || die "empty username"
    [ -n "$3" ] || die "empty password for $2"
    case "$2" in *:*) die "a username cannot contain ':' ($2)" ;; esac
    end_with_newline "$1"
    if ! printf '%s\n%s\n' "$3" "$3" | mosquitto_passwd "$1" "$2" >/dev/null; then
        die "mosquitto_passwd failed for $2"
    fi
    echo "make-passwd: set $2" >&2
}

# Service client ids start with "gulou-" (gulou-ingest-1, ...); a device named like that would get the same
# client id on the devices' listener and could take over a service's session.
check_device_id() {
    case "$1" in
        gulou-* | GULOU-* | Gulou-*) die "device id '$1' uses the prefix reserved for services" ;;
        "" | *[!A-Za-z0-9_.-]*) die "device id '$1': letters, digits, '-', '_' and '.' only" ;;
    esac
}

random_password() {
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

finish() {
    for path in "$@"; do
        if [ -d "$path" ]; then chmod 0700 "$path"; else chmod 0600 "$path"; fi
    done
    # Started as root, Mosquitto switches to its own user before reading these files.
    chown mosquitto:mosquitto "$@" 2>/dev/null || true
}

command="${1:-services}"
[ $# -gt 0 ] && shift
case "$command" in
    services)
        tmp="$SERVICES.new"
        : > "$tmp"
        set_password "$tmp" gulou-ingest "$(secret GULOU_INGEST_PASSWORD)"
        set_password "$tmp" gulou-rules "$(secret GULOU_RULES_PASSWORD)"
        # Optional users exist only while their password is set: emptying it removes the user.
        sim=$(secret GULOU_SIM_PASSWORD)
        [ -z "$sim" ] || set_password "$tmp" gulou-sim "$sim"
        alerts=$(secret GULOU_ALERTS_PASSWORD)
        [ -z "$alerts" ] || set_password "$tmp" gulou-alerts "$alerts"
        health=$(random_password)
        set_password "$tmp" gulou-health "$health"
        printf -- '-u gulou-health\n-P %s\n' "$health" > "$HEALTH_DIR/mosquitto_sub"
        mv "$tmp" "$SERVICES"
        finish "$SERVICES" "$HEALTH_DIR/mosquitto_sub"
        if [ ! -f "$TLS_SOURCE/server.crt" ] || [ ! -f "$TLS_SOURCE/server.key" ]; then
            die "no server.crt/server.key in $TLS_SOURCE: run deploy/tls/make-certs.sh first"
        fi
        mkdir -p "$TLS_DIR"
        cp "$TLS_SOURCE/server.crt" "$TLS_SOURCE/server.key" "$TLS_DIR/"
        finish "$TLS_DIR" "$TLS_DIR/server.crt" "$TLS_DIR/server.key"
        echo "make-passwd: installed the TLS certificate from $TLS_SOURCE" >&2
        ;;
    add)
        for device in "$@"; do
            check_device_id "$device"
            end_with_newline "$DEVICES"
            mosquitto_passwd "$DEVICES" "$device"
        done
        ;;
    import)
        # "|| [ -n ... ]": a last line without a newline is still a device.
        while IFS=: read -r device password || [ -n "$device" ]; do
            case "$device" in "" | "#"*) continue ;; esac
            password=$(printf '%s' "$password" | tr -d '\r')
            check_device_id "$device"
            set_password "$DEVICES" "$device" "$password"
        done
        ;;
    delete)
        for device in "$@"; do
            end_with_newline "$DEVICES"
            mosquitto_passwd -D "$DEVICES" "$device"
        done
        ;;
    *)
        echo "usage: make-passwd.sh [services | add DEVICE... | import < FILE | delete DEVICE...]" >&2
        exit 2
        ;;
esac
finish "$AUTH_DIR" "$DEVICES"
