"""The drop subsystem: how imagery arrives and is unpacked into a data root.

- :mod:`flows.drops.events`: what a drop is (a prefix closed by ``_DONE``) and its event;
- :mod:`flows.drops.watcher` (local folder) and :mod:`flows.drops.gcs_bridge` (GCS via
  Pub/Sub): the two event sources;
- :mod:`flows.drops.plan`: sorting a drop's files by name;
- :mod:`flows.drops.receipt`: the journal and receipt that make unpacking crash-safe (kept in
  the root's ``state/``, never in the drop);
- :mod:`flows.drops.confinement`: the trust boundary, where a drop's files may go, checked
  before every move;
- :mod:`flows.drops.unpack`: validating and moving the files, under the root's drop lock;
- :mod:`flows.drops.drop`: the ``imagery-drop`` flow, which unpacks and starts the follow-ups.

Imports go one way: ``drop → unpack → (plan, confinement) → (receipt, events)``; the event
sources need only ``events`` (and the watcher :mod:`flows.layout`, for where its state goes), so
the watcher and the bridge start without Prefect's flow machinery.
"""
