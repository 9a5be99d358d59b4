#!/bin/sh
# Starts SeaweedFS with one S3 identity taken from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, so the keys
# live in .env and never in a file of the repository. Arguments are weed's own (see docker-compose.yaml).
set -eu
: "${AWS_ACCESS_KEY_ID:?set AWS_ACCESS_KEY_ID in .env}"
: "${AWS_SECRET_ACCESS_KEY:?set AWS_SECRET_ACCESS_KEY in .env}"
config="${TMPDIR:-/tmp}/seaweedfs-s3.json"
umask 077
cat >"$config" <<JSON
{
  "identities": [
    {
      "name": "churnguard",
      "credentials": [{"accessKey": "${AWS_ACCESS_KEY_ID}", "secretKey": "${AWS_SECRET_ACCESS_KEY}"}],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    }
  ]
}
JSON
exec weed "$@" -s3.config="$config"
