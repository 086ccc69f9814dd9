"""Protocol 1.1: todo versions and revisions, per-user revision counters, tombstones,
idempotency keys; existing todos backfilled."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('todo_ws_service', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner_id', fields.BigIntField()),
                ('key', fields.CharField(max_length=64)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('reply', fields.TextField(unique=False)),
                ('created_at', fields.FloatField()),
            ],
            options={'table': 'idempotency_keys', 'app': 'todo_ws_service', 'unique_together': (('owner_id', 'key'),), 'pk_attr': 'id', 'table_description': "The first successful reply to a keyed write, stored in the write's transaction."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TodoTombstone',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner_id', fields.BigIntField()),
                ('todo_id', fields.BigIntField()),
                ('rev', fields.BigIntField()),
                ('deleted_at', fields.FloatField()),
            ],
            options={'table': 'todo_tombstones', 'app': 'todo_ws_service', 'indexes': [Index(fields=['owner_id', 'rev'])], 'pk_attr': 'id', 'table_description': 'A deletion, remembered `TODO_TOMBSTONE_TTL` seconds (Unix time in `deleted_at`).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UserRevision',
            fields=[
                ('owner_id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('rev', fields.BigIntField(default=0)),
                ('horizon', fields.BigIntField(default=0)),
            ],
            options={'table': 'todo_revisions', 'app': 'todo_ws_service', 'pk_attr': 'owner_id', 'table_description': "A user's revision `rev` (0 before their first change), and the resume horizon:"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Todo',
            name='rev',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Todo',
            name='version',
            field=fields.IntField(default=1, db_default=1),
        ),
        # Existing data (written by protocol 1.0): each todo counts as one change, in id
        # order, so a user's revision starts at their number of todos and `since=0`
        # returns all of them. New todos get version 1 from the column default.
        ops.RunSQL(
            [
                "UPDATE todos SET version = 1, rev = (SELECT COUNT(*) FROM todos AS older"
                " WHERE older.owner_id = todos.owner_id AND older.id <= todos.id)",
                "INSERT INTO todo_revisions (owner_id, rev, horizon)"
                " SELECT owner_id, COUNT(*), 0 FROM todos GROUP BY owner_id",
            ]
        ),
    ]
