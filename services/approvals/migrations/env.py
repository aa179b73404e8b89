from chassis.migrations import run_migrations
from services.approvals.models import Base

run_migrations(Base.metadata)
