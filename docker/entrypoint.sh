#!/bin/sh
# Entry point of the hub's images: one word picks the process, anything else runs as given.
#
#   web        gunicorn serving registry.wsgi (static files by whitenoise, collected at build time)
#   worker     a verifier Celery worker: one process, one GPU (or the CPU), queue $VERIFIER_QUEUE
#   beat       the Celery beat that schedules the sweeper, embedded in a torch-free solo worker that runs it
#              from its own queue $VERIFIER_SWEEP_QUEUE (run exactly one per deployment)
#   migrate    apply database migrations and sync the task table from ticketclient, then exit
#
# Knobs read here: WEB_CONCURRENCY (gunicorn processes, read by gunicorn itself), WEB_THREADS,
# WEB_TIMEOUT_S, VERIFIER_QUEUE, VERIFIER_SWEEP_QUEUE, CELERY_LOG_LEVEL, CELERY_BEAT_SCHEDULE.
set -eu

[ $# -gt 0 ] || set -- web

case "$1" in
  web)
    shift
    exec gunicorn registry.wsgi:application \
      --bind 0.0.0.0:8000 \
      --worker-class gthread --threads "${WEB_THREADS:-4}" \
      --timeout "${WEB_TIMEOUT_S:-120}" \
      --access-logfile - --error-logfile - \
      "$@"
    ;;
  worker)
    shift
    exec celery -A verifier worker -Q "${VERIFIER_QUEUE:-verify}" --concurrency 1 \
      -l "${CELERY_LOG_LEVEL:-info}" "$@"
    ;;
  beat)
    shift
    export VERIFIER_WORKER_ROLE=sweeper
    exec celery -A verifier worker --beat -Q "${VERIFIER_SWEEP_QUEUE:-verify-sweep}" -P solo --concurrency 1 \
      -n "sweeper@%h" -l "${CELERY_LOG_LEVEL:-info}" \
      --schedule "${CELERY_BEAT_SCHEDULE:-/tmp/celerybeat-schedule}" "$@"
    ;;
  migrate)
    shift
    python manage.py migrate --noinput "$@"
    exec python manage.py sync_tasks
    ;;
  *)
    exec "$@"
    ;;
esac
