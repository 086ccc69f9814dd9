from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Todo',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner_id', fields.BigIntField()),
                ('title', fields.CharField(max_length=200)),
                ('description', fields.TextField(null=True, unique=False)),
                ('completed', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'todos', 'app': 'todo_ws_service', 'indexes': [Index(fields=['owner_id', 'id'])], 'pk_attr': 'id', 'table_description': "A user's todo. `owner_id` is the JWT `sub` as a number, not a foreign key."},
            bases=['Model'],
        ),
    ]
