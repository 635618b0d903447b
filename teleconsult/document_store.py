"""The drop box's document store, chosen by `documents_store`: the local directory
(data_dir/documents/, the default) or an S3-compatible bucket (filedrop/s3storage.py)."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

from filedrop.storage import DocumentStorage, LocalStorage, Unavailable

from .settings import Settings, SettingsError

MiB = 1024 * 1024


def s3_credentials(settings: Settings) -> tuple[str, str]:
    """(access key id, secret key): from the settings, or from s3_credentials_file, which
    must be readable by the app's user only (SettingsError otherwise)."""
    if not settings.s3_credentials_file:
        return settings.s3_access_key_id, settings.s3_secret_access_key
    path = Path(settings.s3_credentials_file)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SettingsError(f"s3_credentials_file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(f"s3_credentials_file {path} is readable by others: chmod 600 it")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
        section = parser[settings.s3_credentials_profile]
        return section["aws_access_key_id"].strip(), section["aws_secret_access_key"].strip()
    except (configparser.Error, KeyError, UnicodeDecodeError):
        raise SettingsError(f"s3_credentials_file {path} has no [{settings.s3_credentials_profile}] section with "
                            "aws_access_key_id and aws_secret_access_key") from None


async def open_document_store(settings: Settings) -> DocumentStorage:
    """The store the settings name, ready (a bucket is checked: SettingsError if unusable)."""
    if settings.documents_store != "s3":
        return LocalStorage(Path(settings.data_dir) / "documents")
    try:
        from filedrop.s3storage import S3Storage
    except ImportError:
        raise SettingsError("documents_store = s3 needs the S3 client: pip install 'teleconsult[s3]'") from None
    key_id, secret = s3_credentials(settings)
    try:
        return await S3Storage.open(endpoint=settings.s3_endpoint, region=settings.s3_region,
                                    bucket=settings.s3_bucket, access_key_id=key_id, secret_access_key=secret,
                                    path_style=settings.s3_path_style, prefix=settings.s3_prefix,
                                    part_size=settings.s3_part_mib * MiB)
    except Unavailable as exc:
        raise SettingsError(f"documents_store = s3: {exc}") from None



