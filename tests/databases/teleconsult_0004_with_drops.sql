BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0004');
CREATE TABLE clinician_profiles (
	clinician_id VARCHAR(32) NOT NULL, 
	name VARCHAR(200) DEFAULT '' NOT NULL, 
	qualification VARCHAR(200) DEFAULT '' NOT NULL, 
	rpps VARCHAR(40) DEFAULT '' NOT NULL, 
	address VARCHAR(400) DEFAULT '' NOT NULL, 
	phone VARCHAR(40) DEFAULT '' NOT NULL, 
	email VARCHAR(320) DEFAULT '' NOT NULL, 
	logo BLOB, 
	logo_type VARCHAR(16), 
	signature BLOB, 
	signature_type VARCHAR(16), 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (clinician_id), 
	FOREIGN KEY(clinician_id) REFERENCES clinicians (id) ON DELETE CASCADE
);
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
INSERT INTO "drop_audit" VALUES(1,1900000000.0,'created','7-KtjHykrobhOkWv633ivg','k1',NULL);
INSERT INTO "drop_audit" VALUES(2,1900000000.0,'completed','7-KtjHykrobhOkWv633ivg','k1',NULL);
INSERT INTO "drop_audit" VALUES(3,1900000000.0,'created','6zuoyoByzSYtACIK8JX3yQ','k1',NULL);
INSERT INTO "drop_audit" VALUES(4,1900000000.0,'created','euimya8f37KJgzsySzbG0A',NULL,NULL);
INSERT INTO "drop_audit" VALUES(5,1900000000.0,'completed','euimya8f37KJgzsySzbG0A',NULL,NULL);
INSERT INTO "drop_audit" VALUES(6,1900000000.0,'downloaded','euimya8f37KJgzsySzbG0A',NULL,NULL);
INSERT INTO "drop_audit" VALUES(7,1900000000.0,'created','XwJ48dMo2Dm9lpr39Z8jRw',NULL,NULL);
INSERT INTO "drop_audit" VALUES(8,1900000000.0,'deleted','XwJ48dMo2Dm9lpr39Z8jRw',NULL,'owner');
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
INSERT INTO "drop_files" VALUES('7-KtjHykrobhOkWv633ivg','k1','clinician','ready',65557,65557,X'6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D6D',NULL,NULL,0,1900000000.0,1900000000.0,1900086400.0,NULL);
INSERT INTO "drop_files" VALUES('6zuoyoByzSYtACIK8JX3yQ','k1','patient','uploading',65557,100,NULL,NULL,NULL,0,1900000000.0,NULL,1900086400.0,NULL);
INSERT INTO "drop_files" VALUES('euimya8f37KJgzsySzbG0A',NULL,'standalone','ready',65557,65557,X'6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E6E','8b0d0f41b4221c73b38a5eec0bf557b6bdf10179e84eacbf03ae813695952a28',3,1,1900000000.0,1900000000.0,1900003600.0,NULL);
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
