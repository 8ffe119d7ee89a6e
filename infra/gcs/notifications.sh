#!/usr/bin/env bash
# Bucket → Pub/Sub → Prefect: what turns a finished imagery drop into a flow run.
#
#   PROJECT=my-project BUCKET=my-imagery-bucket ./infra/gcs/notifications.sh
#
# 1. a Pub/Sub topic for the bucket's notifications;
# 2. a bucket notification: OBJECT_FINALIZE only, JSON payload, only objects under the drops
#    prefix (scene files AND the `_DONE` marker a producer writes last);
# 3. a pull subscription that `python -m flows.drops.gcs_bridge --subscription …` reads. The bridge
#    emits ONE `landcover.imagery.dropped` event per drop, for the `_DONE` marker, and ignores
#    the other objects' notifications (see flows/drops/events.py for what a drop is).
#
# Idempotent: existing topic / subscription are kept; a second identical notification is not
# created. Needs gcloud (with `gcloud storage`) and rights to create topics and notifications.
set -euo pipefail

: "${PROJECT:?set PROJECT to the GCP project id}"
: "${BUCKET:?set BUCKET to the bucket that receives imagery drops}"
DROPS_PREFIX="${DROPS_PREFIX:-drops/}"
TOPIC="${TOPIC:-landcover-drops}"
SUBSCRIPTION="${SUBSCRIPTION:-landcover-drops-bridge}"

gcloud config set project "${PROJECT}" >/dev/null

if ! gcloud pubsub topics describe "${TOPIC}" >/dev/null 2>&1; then
  gcloud pubsub topics create "${TOPIC}"
fi

# The bucket's service agent must be allowed to publish to the topic.
SERVICE_AGENT="$(gcloud storage service-agent --project="${PROJECT}")"
gcloud pubsub topics add-iam-policy-binding "${TOPIC}" \
  --member="serviceAccount:${SERVICE_AGENT}" --role="roles/pubsub.publisher" >/dev/null

if ! gcloud storage buckets notifications list "gs://${BUCKET}" --format="value(topic)" \
    | grep -q "/topics/${TOPIC}\$"; then
  gcloud storage buckets notifications create "gs://${BUCKET}" \
    --topic="${TOPIC}" \
    --event-types=OBJECT_FINALIZE \
    --object-prefix="${DROPS_PREFIX}" \
    --payload-format=json
fi

if ! gcloud pubsub subscriptions describe "${SUBSCRIPTION}" >/dev/null 2>&1; then
  gcloud pubsub subscriptions create "${SUBSCRIPTION}" \
    --topic="${TOPIC}" \
    --ack-deadline=60 \
    --message-retention-duration=7d
fi

echo "notifications of gs://${BUCKET}/${DROPS_PREFIX} → topic ${TOPIC} → subscription ${SUBSCRIPTION}"
echo "run the bridge: PREFECT_API_URL=… python -m flows.drops.gcs_bridge \\"
echo "  --subscription projects/${PROJECT}/subscriptions/${SUBSCRIPTION} --prefix ${DROPS_PREFIX}"
