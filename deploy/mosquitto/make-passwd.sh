#!/bin/sh
# Create or extend the broker password file in the mosquitto-auth volume. Passwords come from the
# environment (.env) or from stdin; none is ever written to the repository.
#
#   make-passwd.sh services              service users from GULOU_*_USERNAME/PASSWORD (default)
#   make-passwd.sh add DEVICE_ID...      prompt for each device's password
#   make-passwd.sh import < FILE         "device_id:password" lines (e.g. from the provisioning system)
#   make-passwd.sh delete USER...        remove users
# After changing the file, reload the broker: docker compose kill -s HUP mosquitto
set -eu

FILE="${PASSWORD_FILE:-/mosquitto/auth/passwd}"
mkdir -p "$(dirname "$FILE")"
[ -f "$FILE" ] || : > "$FILE"

set_user() {
    if [ -z "$1" ] || [ -z "$2" ]; then
        echo "make-passwd: empty username or password (check .env)" >&2
        exit 1
    fi
    mosquitto_passwd -b "$FILE" "$1" "$2"
    echo "make-passwd: set $1" >&2
}

command="${1:-services}"
[ $# -gt 0 ] && shift
case "$command" in
    services)
        set_user "${GULOU_INGEST_USERNAME:-gulou-ingest}" "${GULOU_INGEST_PASSWORD:-}"
        set_user "${GULOU_RULES_USERNAME:-gulou-rules}" "${GULOU_RULES_PASSWORD:-}"
        if [ -n "${GULOU_SIM_PASSWORD:-}" ]; then
            set_user "${GULOU_SIM_USERNAME:-gulou-sim}" "$GULOU_SIM_PASSWORD"
        fi
        ;;
    add)
        for device in "$@"; do mosquitto_passwd "$FILE" "$device"; done
        ;;
    import)
        while IFS=: read -r user password; do
            [ -n "$user" ] && set_user "$user" "$password"
        done
        ;;
    delete)
        for user in "$@"; do mosquitto_passwd -D "$FILE" "$user"; done
        ;;
    *)
        echo "usage: make-passwd.sh [services | add DEVICE... | import < FILE | delete USER...]" >&2
        exit 2
        ;;
esac

# Mosquitto 2 refuses world-readable password files in future versions and warns today.
chmod 0700 "$FILE"
chown mosquitto:mosquitto "$FILE" 2>/dev/null || true
