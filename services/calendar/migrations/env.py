from chassis.migrations import run_migrations
from services.calendar.models import Base

run_migrations(Base.metadata)
