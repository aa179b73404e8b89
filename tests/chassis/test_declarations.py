"""What the chassis declares for every service's tables and settings: the column type of each
annotation (``COLUMN_TYPES``), the shared key and insert-time columns, and the database URL a
service gets when none is configured."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped
from sqlalchemy.schema import CreateTable

from chassis.database import COLUMN_TYPES, InsertedAt, SerialKey, UuidKey, new_metadata
from chassis.settings import ServiceSettings

INTERNAL_KEY = "k" * 32


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = COLUMN_TYPES


class Sample(Base):
    __tablename__ = "samples"

    id: Mapped[UuidKey]
    name: Mapped[str]
    note: Mapped[str | None]
    subject_id: Mapped[uuid.UUID]
    due_at: Mapped[datetime | None]
    created_at: Mapped[InsertedAt]


class LogEntry(Base):
    __tablename__ = "log_entries"

    id: Mapped[SerialKey]
    at: Mapped[InsertedAt]


def ddl(table: type[Base]) -> str:
    statement = CreateTable(Base.metadata.tables[table.__tablename__])
    return " ".join(str(statement.compile(dialect=postgresql.dialect())).split())


def test_annotations_alone_give_text_instants_with_zone_and_uuids() -> None:
    assert ddl(Sample) == (
        "CREATE TABLE samples ( id UUID NOT NULL, name TEXT NOT NULL, note TEXT, "
        "subject_id UUID NOT NULL, due_at TIMESTAMP WITH TIME ZONE, "
        "created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
        "CONSTRAINT pk_samples PRIMARY KEY (id) )"
    )


def test_a_serial_key_is_numbered_by_the_database() -> None:
    assert ddl(LogEntry) == (
        "CREATE TABLE log_entries ( id BIGINT GENERATED ALWAYS AS IDENTITY, "
        "at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL, "
        "CONSTRAINT pk_log_entries PRIMARY KEY (id) )"
    )


def test_a_service_without_a_database_url_gets_its_local_database() -> None:
    settings = ServiceSettings(service_name="sample", internal_key=SecretStr(INTERNAL_KEY))
    assert settings.database_url == "postgresql+asyncpg://postgres@localhost:5432/chorus_sample"


def test_a_configured_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    given = ServiceSettings(
        service_name="sample",
        database_url="postgresql+asyncpg://db.internal/sample",
        internal_key=SecretStr(INTERNAL_KEY),
    )
    assert given.database_url == "postgresql+asyncpg://db.internal/sample"

    class SampleSettings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="SAMPLE_")

        service_name: str = "sample"

    monkeypatch.setenv("SAMPLE_DATABASE_URL", "postgresql+asyncpg://env/sample")
    monkeypatch.setenv("SAMPLE_INTERNAL_KEY", INTERNAL_KEY)
    assert SampleSettings().database_url == "postgresql+asyncpg://env/sample"
