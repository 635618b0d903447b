BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0003');
CREATE TABLE clinicians (
	id VARCHAR(32) NOT NULL, 
	email VARCHAR(320) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	password_hash VARCHAR(200) NOT NULL, 
	totp_secret VARCHAR(64), 
	totp_enabled BOOLEAN NOT NULL, 
	totp_last_counter INTEGER, 
	api_token_hash VARCHAR(64), 
	created_at FLOAT NOT NULL, session_epoch INTEGER DEFAULT '0' NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email), 
	UNIQUE (api_token_hash)
);
INSERT INTO "clinicians" VALUES('c1','old@example.org','Dr Old','x',NULL,0,NULL,NULL,0.0,0);
CREATE TABLE consultations (
	id VARCHAR(32) NOT NULL, 
	clinician_id VARCHAR(32) NOT NULL, 
	room_name VARCHAR(64) NOT NULL, 
	join_token VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	allow_rejoin BOOLEAN NOT NULL, 
	created_at FLOAT NOT NULL, 
	deadline_at FLOAT NOT NULL, 
	ended_at FLOAT, 
	end_reason VARCHAR(32), 
	PRIMARY KEY (id), 
	FOREIGN KEY(clinician_id) REFERENCES clinicians (id), 
	UNIQUE (room_name), 
	UNIQUE (join_token)
);
INSERT INTO "consultations" VALUES('k1','c1','room-one','join-one','in_call',1,1900000000.0,1900007200.0,NULL,NULL);
CREATE TABLE drop_audit (
	seq INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	action VARCHAR(16) NOT NULL, 
	file_id VARCHAR(32) NOT NULL, 
	box_id VARCHAR(32), 
	reason VARCHAR(32), 
	PRIMARY KEY (seq)
);
INSERT INTO "drop_audit" VALUES(1,1900000000.0,'created','zKYpGfiA-LqA-fsB2kF2GA','k1',NULL);
INSERT INTO "drop_audit" VALUES(2,1900000000.0,'completed','zKYpGfiA-LqA-fsB2kF2GA','k1',NULL);
INSERT INTO "drop_audit" VALUES(3,1900000000.0,'created','QGC9ZjWD9ykDXPrcN7bAeQ','k1',NULL);
INSERT INTO "drop_audit" VALUES(4,1900000000.0,'created','ycgj-u90lDumCbqZ58pwqg',NULL,NULL);
INSERT INTO "drop_audit" VALUES(5,1900000000.0,'completed','ycgj-u90lDumCbqZ58pwqg',NULL,NULL);
INSERT INTO "drop_audit" VALUES(6,1900000000.0,'downloaded','ycgj-u90lDumCbqZ58pwqg',NULL,NULL);
INSERT INTO "drop_audit" VALUES(7,1900000000.0,'created','bP98m-jVJ3p8tJn-KVaYFw',NULL,NULL);
INSERT INTO "drop_audit" VALUES(8,1900000000.0,'deleted','bP98m-jVJ3p8tJn-KVaYFw',NULL,'owner');
CREATE TABLE drop_files (
	id VARCHAR(32) NOT NULL, 
	box_id VARCHAR(32), 
	uploaded_by VARCHAR(16) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	size BIGINT NOT NULL, 
	received BIGINT NOT NULL, 
	meta BLOB, 
	owner_token_hash VARCHAR(64), 
	max_downloads INTEGER, 
	downloads INTEGER NOT NULL, 
	created_at FLOAT NOT NULL, 
	completed_at FLOAT, 
	expires_at FLOAT NOT NULL, 
	delete_at FLOAT, 
	PRIMARY KEY (id)
);
INSERT INTO "drop_files" VALUES('zKYpGfiA-LqA-fsB2kF2GA','k1','clinician','ready',65557,65557,X'6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D',NULL,NULL,0,1900000000.0,1900000000.0,1900086400.0,NULL);
INSERT INTO "drop_files" VALUES('QGC9ZjWD9ykDXPrcN7bAeQ','k1','patient','uploading',65557,100,NULL,NULL,NULL,0,1900000000.0,NULL,1900086400.0,NULL);
INSERT INTO "drop_files" VALUES('ycgj-u90lDumCbqZ58pwqg',NULL,'standalone','ready',65557,65557,X'6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E','898112856256a0456edee8bd0c00002340dec0fec06359d63b4079cc4ad0619b',3,1,1900000000.0,1900000000.0,1900003600.0,NULL);
CREATE TABLE knocks (
	id VARCHAR(32) NOT NULL, 
	consultation_id VARCHAR(32) NOT NULL, 
	display_name VARCHAR(80) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at FLOAT NOT NULL, 
	decided_at FLOAT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(consultation_id) REFERENCES consultations (id)
);
CREATE TABLE used_rooms (
	room_name VARCHAR(64) NOT NULL, 
	PRIMARY KEY (room_name)
);
CREATE INDEX ix_consultations_clinician_id ON consultations (clinician_id);
CREATE INDEX ix_knocks_consultation_id ON knocks (consultation_id);
CREATE INDEX ix_drop_files_delete_at ON drop_files (delete_at);
CREATE INDEX ix_drop_files_box_id ON drop_files (box_id);
CREATE INDEX ix_drop_files_expires_at ON drop_files (expires_at);
CREATE INDEX ix_drop_audit_box_id ON drop_audit (box_id);
COMMIT;
