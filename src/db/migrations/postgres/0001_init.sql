-- Tenancy, users, device credentials and the domain tables.
-- Ids are uuid (UUIDv7), times timestamptz, JSON columns jsonb. Rows are soft-deleted (deleted_at); unique names hold among
-- the rows not deleted.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    settings jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE UNIQUE INDEX organizations_slug ON organizations (slug) WHERE deleted_at IS NULL;

CREATE TABLE users (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'technician', 'viewer')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    password_hash TEXT NOT NULL,
    last_login_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE UNIQUE INDEX users_email ON users (email) WHERE deleted_at IS NULL;
CREATE INDEX users_org ON users (organization_id, created_at);

CREATE TABLE device_types (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT,
    icon TEXT,
    manufacturer TEXT,
    model TEXT,
    protocol TEXT NOT NULL DEFAULT 'http',
    processing_mode TEXT NOT NULL DEFAULT 'endpoint',
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE UNIQUE INDEX device_types_name ON device_types (organization_id, name) WHERE deleted_at IS NULL;

CREATE TABLE devices (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    device_type_id uuid NOT NULL REFERENCES device_types (id),
    name TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL DEFAULT 'offline',
    serial_number TEXT,
    firmware_version TEXT,
    network_info jsonb NOT NULL DEFAULT '{}',
    location jsonb,
    attributes jsonb NOT NULL DEFAULT '{}',
    device_role TEXT NOT NULL DEFAULT 'endpoint',
    parent_device_id uuid REFERENCES devices (id),
    logical_identifier TEXT,
    last_seen_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX devices_org ON devices (organization_id, created_at);
CREATE INDEX devices_type ON devices (device_type_id);
CREATE INDEX devices_parent ON devices (parent_device_id);
CREATE UNIQUE INDEX devices_logical ON devices (parent_device_id, logical_identifier)
    WHERE deleted_at IS NULL AND logical_identifier IS NOT NULL;

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_device ON api_keys (device_id);

CREATE TABLE asset_types (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    parent_id uuid REFERENCES asset_types (id),
    name TEXT NOT NULL,
    description TEXT,
    icon TEXT,
    color TEXT,
    custom_fields jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE UNIQUE INDEX asset_types_name ON asset_types (organization_id, name) WHERE deleted_at IS NULL;
CREATE INDEX asset_types_parent ON asset_types (parent_id);

CREATE TABLE spaces (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    parent_id uuid REFERENCES spaces (id),
    name TEXT NOT NULL,
    description TEXT,
    space_type TEXT,
    location jsonb,
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX spaces_org ON spaces (organization_id, created_at);
CREATE INDEX spaces_parent ON spaces (parent_id);

CREATE TABLE assets (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    asset_type_id uuid NOT NULL REFERENCES asset_types (id),
    parent_id uuid REFERENCES assets (id),
    space_id uuid REFERENCES spaces (id),
    name TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    serial_number TEXT,
    health_score double precision,
    health_score_updated_at timestamptz,
    location jsonb,
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX assets_org ON assets (organization_id, created_at);
CREATE INDEX assets_type ON assets (asset_type_id);
CREATE INDEX assets_parent ON assets (parent_id);

CREATE TABLE persons (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    user_id uuid REFERENCES users (id),
    name TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    title TEXT,
    location jsonb,
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX persons_org ON persons (organization_id, created_at);

CREATE TABLE activity_types (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT,
    category TEXT NOT NULL,
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE UNIQUE INDEX activity_types_name ON activity_types (organization_id, name) WHERE deleted_at IS NULL;

CREATE TABLE activities (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    activity_type_id uuid REFERENCES activity_types (id),
    title TEXT NOT NULL,
    description TEXT,
    category TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    priority TEXT NOT NULL DEFAULT 'medium',
    assignee_user_id uuid REFERENCES users (id),
    due_at timestamptz,
    completed_at timestamptz,
    source TEXT NOT NULL DEFAULT 'manual',
    source_ref TEXT,
    asset_id uuid REFERENCES assets (id),
    device_id uuid REFERENCES devices (id),
    space_id uuid REFERENCES spaces (id),
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX activities_org ON activities (organization_id, created_at);
CREATE INDEX activities_asset ON activities (asset_id);

CREATE TABLE audit_log (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    actor_type TEXT NOT NULL,
    actor_id uuid,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id text NOT NULL,
    changes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log (organization_id, entity_type, entity_id, created_at);
CREATE INDEX audit_log_org ON audit_log (organization_id, created_at);
