"""Manifest parsing against the real captured AWS files and hand-made edge cases."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from dynamodb_cdc.manifest import (
    FULL_EXPORT,
    INCREMENTAL_EXPORT,
    ExportRefused,
    ManifestError,
    check_manifest_md5,
    md5_base64,
    parse_files_manifest,
    parse_summary,
    table_name_from_arn,
)
from conftest import SAMPLES


def real(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_real_full_export_summary():
    s = parse_summary(real("full-export-manifest-summary.json"), key="manifest-summary.json")
    assert s.export_type == FULL_EXPORT  # exportType is absent in this real 2022 export
    assert s.table_name == "livros_por_ler"
    assert s.s3_prefix is None
    assert s.export_time == datetime(2022, 11, 12, 4, 30, 50, 456000, tzinfo=timezone.utc)
    assert s.point_in_time == s.export_time
    assert s.manifest_files_key == "AWSDynamoDB/01668227450456-b6733290/manifest-files.json"
    assert s.item_count == 6


def test_real_files_manifest():
    files = parse_files_manifest(real("full-export-manifest-files.json"), key="manifest-files.json")
    assert [(f.key, f.item_count, f.md5) for f in files] == [
        ("AWSDynamoDB/01668227450456-b6733290/data/enpvklgbwq7gta42yshirxd6ea.json.gz", 6, "EV+2HwdmZ3AyD9j+Yxd+Mg==")
    ]


def test_real_manifest_md5_values():
    # The values the real export wrote beside its manifests (samples README).
    assert md5_base64(real("full-export-manifest-summary.json")) == "iLBzJYa4HPixvLRk02MXZw=="
    assert md5_base64(real("full-export-manifest-files.json")) == "eF9XArdBefG4NFSVs2U2ow=="
    check_manifest_md5(real("full-export-manifest-files.json"), b"eF9XArdBefG4NFSVs2U2ow==", key="k")
    with pytest.raises(ManifestError, match="does not match"):
        check_manifest_md5(real("full-export-manifest-files.json"), b"iLBzJYa4HPixvLRk02MXZw==", key="k")


def summary(**overrides) -> bytes:
    doc = json.loads(real("full-export-manifest-summary.json"))
    doc.update(overrides)
    return json.dumps(doc).encode()


def test_ion_export_is_refused_clearly():
    with pytest.raises(ExportRefused, match="ION format.*DYNAMODB_JSON"):
        parse_summary(summary(outputFormat="ION"), key="s3://b/AWSDynamoDB/x/manifest-summary.json")


def test_incremental_summary_needs_its_window():
    s = parse_summary(
        summary(
            exportType=INCREMENTAL_EXPORT, exportTime=None, version="2023-08-01",
            exportFromTime="2024-01-01T00:00:00.000Z", exportToTime="2024-01-01T01:00:00.000Z",
            outputView="NEW_AND_OLD_IMAGES",
        ),
        key="k",
    )
    assert s.point_in_time == datetime(2024, 1, 1, 1, tzinfo=timezone.utc)
    assert s.sort_key()[0] == datetime(2024, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ManifestError, match="exportFromTime"):
        parse_summary(summary(exportType=INCREMENTAL_EXPORT, exportTime=None), key="k")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (summary(exportArn=None), "exportArn"),
        (summary(exportTime="yesterday"), "not an ISO-8601 time"),
        (summary(tableArn="arn:aws:s3:::bucket"), "not a DynamoDB table ARN"),
        (summary(exportType="SOMETHING"), "unknown exportType"),
    ],
)
def test_bad_summaries_name_the_object(content, message):
    with pytest.raises(ManifestError, match=message) as err:
        parse_summary(content, key="s3://b/p/manifest-summary.json")
    assert "s3://b/p/manifest-summary.json" in str(err.value)


@pytest.mark.parametrize(
    "line, message",
    [
        (b"{oops", "line 2: not valid JSON"),
        (b'{"itemCount":1,"md5Checksum":"x"}', "line 2: dataFileS3Key"),
        (b'{"itemCount":-1,"md5Checksum":"x","dataFileS3Key":"k"}', "line 2: itemCount"),
        (b'{"itemCount":true,"md5Checksum":"x","dataFileS3Key":"k"}', "line 2: itemCount"),
        (b'{"itemCount":1,"dataFileS3Key":"k"}', "line 2: md5Checksum"),
    ],
)
def test_bad_files_manifest_lines_are_named(line, message):
    content = real("full-export-manifest-files.json") + line + b"\n"
    with pytest.raises(ManifestError, match=message):
        parse_files_manifest(content, key="manifest-files.json")


def test_ion_data_files_are_refused():
    line = b'{"itemCount":1,"md5Checksum":"x","etag":"e-1","dataFileS3Key":"AWSDynamoDB/x/data/a.ion.gz"}\n'
    with pytest.raises(ExportRefused, match="ION"):
        parse_files_manifest(line, key="manifest-files.json")


def test_table_name_from_arn():
    assert table_name_from_arn("arn:aws:dynamodb:us-east-1:1:table/my.table-1") == "my.table-1"
    assert table_name_from_arn("arn:aws:dynamodb:us-east-1:1:table/t/export/01-ab") == "t"


def test_full_exports_sort_oldest_first():
    old = parse_summary(summary(exportTime="2022-01-01T00:00:00.000Z", exportArn="a2"), key="k")
    new = parse_summary(summary(exportTime="2023-01-01T00:00:00.000Z", exportArn="a1"), key="k")
    assert sorted([new, old], key=lambda s: s.sort_key()) == [old, new]
