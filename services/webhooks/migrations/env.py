from chassis.migrations import run_migrations
from services.webhooks.models import Base

run_migrations(Base.metadata)
