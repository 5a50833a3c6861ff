"""Backup and restore of the fleet's PostgreSQL databases and Qdrant collections to S3.

Runs as `python -m fleet_backup {backup,restore,list,schedule}` in a container on the shared node.

Environment (secrets are never logged; AWS and PostgreSQL ones are read by boto3/libpq directly):

  BACKUP_STACK            required  stack name; objects go under backups/<stack>/<run id>/
  BACKUP_S3_BUCKET        required  bucket name
  BACKUP_S3_ENDPOINT      optional  S3-compatible endpoint URL; absent = AWS
  BACKUP_S3_REGION        optional  default us-east-1
  BACKUP_S3_PREFIX        optional  default backups/<stack>/ (must end in '/')
  AWS_ACCESS_KEY_ID       secret    read by boto3 itself (absent = boto3's default credential chain)
  AWS_SECRET_ACCESS_KEY   secret    read by boto3 itself
  PGHOST, PGPORT          required/optional (default 5432)  the shared PostgreSQL
  PGUSER                  required  the cluster's admin (superuser): restore creates, renames and
                                    drops databases and SETs ROLE to each app role
  PGPASSWORD              secret    read by libpq (pg_dump, pg_restore, psycopg), never by our code
  BACKUP_APPS             required  comma-separated app names ([a-z][a-z0-9-]*); app `chat-2` has
                                    role and database openwebui_chat_2 and Qdrant collections `chat-2_*`
  QDRANT_URL              optional  e.g. http://qdrant:6333; absent = no Qdrant snapshots
  QDRANT_API_KEY          secret    optional, sent as the `api-key` header
  BACKUP_WORK_DIR         optional  where each run's scratch dir for dumps goes (default: system temp);
                                    the scratch dir is removed after the run
  BACKUP_LOCK_FILE        optional  default /var/lock/fleet-backup.lock
  BACKUP_LOCK_STALE_SECONDS optional default 21600 (6 h): an older lock object in S3 is ignored

Exit codes: 0 ok; 1 unexpected error; 2 configuration/arguments; 3 another backup or restore is
running; 4 a dump or Qdrant snapshot failed; 5 an S3 upload or its read-back check failed;
6 restore refused before changing anything (unknown backup, checksum mismatch, missing role);
7 restore failed while restoring.
"""
