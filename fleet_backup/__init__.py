"""Backup and restore of the fleet's PostgreSQL databases, Qdrant collections and uploaded files to S3.

Runs as `python -m fleet_backup {backup,restore,verify,list,status,health,schedule}` in a container on
the shared node.

Environment (secrets are never logged; AWS and PostgreSQL ones are read by boto3/libpq directly):

  BACKUP_STACK            required  stack name; objects go under backups/<stack>/<run id>/
  BACKUP_S3_BUCKET        required  bucket name
  BACKUP_S3_ENDPOINT      optional  S3-compatible endpoint URL; absent = AWS
  BACKUP_S3_REGION        optional  default us-east-1
  BACKUP_S3_PREFIX        optional  default backups/<stack>/ (must end in '/')
  AWS_ACCESS_KEY_ID       secret    read by boto3 itself (absent = boto3's default credential chain)
  AWS_SECRET_ACCESS_KEY   secret    read by boto3 itself
  PGHOST, PGPORT          required/optional (default 5432)  the shared PostgreSQL
  PGUSER                  required  the job's own role (fleet_backup: CREATEDB, a member of each app
                                    role, not superuser): creates, renames and drops app databases
  PGPASSWORD              secret    its password, read by libpq, never by our code
  APP_DB_PASSWORD_<APP>   secret    required for each app (APP = name upper-cased, '-' as '_'): pg_dump,
                                    pg_restore and row counts log in as the app's own role, so SQL the
                                    app created (a CHECK, a default) never runs with more than its rights
  BACKUP_APPS             required  comma-separated app names ([a-z][a-z0-9-]*); app `chat-2` has
                                    role and database openwebui_chat_2 and Qdrant collections `chat-2_*`
  BACKUP_REPORT_COLUMNS   restore   JSON {"table": ["column", ...]} (the program sets it): after a restore,
                                    each app's analytics role (openwebui_<app>_analytics) gets CONNECT and
                                    SELECT on these columns only; the dump's own grants are not restored
  QDRANT_URL              optional  e.g. http://qdrant:6333; absent = no Qdrant snapshots
  QDRANT_API_KEY          secret    optional, sent as the `api-key` header
  FLEET_CA_FILE           optional  a CA file: an https QDRANT_URL and FILES_S3_ENDPOINT must chain to it
                                    (sharedServices.tls); the backup store keeps the public roots
  FILES_S3_BUCKET         optional  the bucket Open WebUI keeps uploads in (its S3_BUCKET_NAME);
                                    absent = the apps' files are not backed up
  FILES_S3_ENDPOINT       optional  its S3-compatible endpoint URL; absent = AWS
  FILES_S3_REGION         optional  default us-east-1
  FILES_S3_PREFIX_TEMPLATE optional default apps/{app}/: each app's key prefix (its S3_KEY_PREFIX + '/');
                                    must contain {app} and end in '/'
  FILES_AWS_ACCESS_KEY_ID secret    keys for the files bucket (set both or neither; neither = boto3's
  FILES_AWS_SECRET_ACCESS_KEY secret  default credential chain)
  BACKUP_WORK_DIR         optional  where each run's scratch dir for dumps goes (default: system temp);
                                    the scratch dir is removed after the run
  BACKUP_LOCK_FILE        optional  default /var/lock/fleet-backup.lock
  BACKUP_LOCK_STALE_SECONDS optional default 21600 (6 h): an older lock object in S3 is ignored
  BACKUP_SIGNING_KEY      secret    required, >= 32 characters: signs every manifest (HMAC-SHA256); restore,
                                    verify and list trust only manifests signed with it
  BACKUP_ENCRYPTION_KEY   secret    optional, >= 32 characters: every object is encrypted (AES-256-GCM)
                                    before upload; restoring an encrypted backup needs it
  BACKUP_STATE_FILE       optional  default /var/lib/fleet-backup/state.json: last runs, for status/health
  BACKUP_KEEP_LAST        optional  after each successful backup keep only the newest N complete runs
                                    (never the newest verified one)
  BACKUP_WEBHOOK_URL      secret    optional: JSON POST on a failure, the first success after one, a failed drill
  BACKUP_METRICS_PORT     optional  `schedule` serves Prometheus metrics on this port
  BACKUP_METRICS_ADDRESS  optional  default 0.0.0.0 (inside the container)
  BACKUP_FILE_WORKERS     optional  default 8: files copied at once (backup, restore, checks)
  BACKUP_S3_OBJECT_LOCK   optional  true when the bucket has Object Lock: writes then carry a SHA-256 header
  BACKUP_COPY_S3_BUCKET   optional  a second bucket every run is copied to (BACKUP_COPY_S3_ENDPOINT,
                                    BACKUP_COPY_S3_REGION; keys BACKUP_COPY_AWS_ACCESS_KEY_ID/_SECRET_ACCESS_KEY)

Files: every object under an app's prefix is copied to files/<app>/<key relative to the prefix>,
BACKUP_FILE_WORKERS at a time (one pool across the apps), after the database dumps: server-side (CopyObject, the store computes
each copy's SHA-256) when the files bucket is on the backup store with the same keys and nothing is
encrypted, else streamed through BACKUP_WORK_DIR (one file per worker) and read back. That order is the safe one: every
file a dumped row references already existed when it was copied (unless a user deleted it in
between: then that row points at nothing, as it already did live); files uploaded after the dump
are copied too, as orphans no restored row refers to. The reverse order would lose new uploads.
`restore` checks every file's SHA-256 before changing anything (while the dumps download), then after
the databases writes the apps' files back under their prefixes (one pool), overwriting same keys. Files under the prefix that are not in the
backup (uploaded since) stay unless --prune-files is given: after a database restore no row refers to
them, but keeping them is the choice that cannot lose data.

Exit codes: 0 ok; 1 unexpected error; 2 configuration/arguments (also: no S3 credentials found);
3 another backup or restore is running; 4 a dump, Qdrant snapshot or file download failed; 5 an S3
upload or its read-back check failed; 6 restore refused before changing anything (unknown backup,
checksum mismatch, missing role, unsigned or forged manifest, missing encryption key); 7 restore failed
while restoring; 8 a restore drill (`verify`) failed; 9 `health`: unhealthy.
"""
