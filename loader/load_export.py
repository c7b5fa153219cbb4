"""``dynamodb-cdc load-export``: land DynamoDB S3 exports in ClickHouse, unparsed.

Per data file: download, verify (MD5, gzip, line count) into temporary files,
one per batch of lines, then insert the batches in order (on the embedded engine several to an
insert).  The ledger (``export_files``) records the last committed line after every insert but a
file's last (the file is marked loaded then), so a rerun skips loaded files and resumes an
interrupted file exactly where it stopped.

Files ClickHouse reads several to a statement (a group, read whole; its files' line counts are
checked after): with --server-side, from S3 itself; on the embedded engine, files of one batch,
downloaded and MD5-checked first.  A file a group could not land is then loaded on its own.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .connection import retrying
from .errors import UsageError
from .lease import Lease, LeaseHeldError
from .manifest import DataFile, ExportSummary, ManifestError, check_windows
from .progress import Progress
from .s3export import (CompressedFile, DataFileError, S3Uri, Segment, VerifiedFile, fetch_compressed, fetch_data_file,
                       find_summaries, no_export_message, read_export)
from .store import FAILED, LOADED, LOADING, FileState, LoadedExport, ServerReadError, Store, remove_stale_links

log = logging.getLogger(__name__)


@dataclass
class LoadOptions:
    batch_rows: int = 100_000
    batch_bytes: int = 32 << 20
    tmp_dir: str | None = None
    progress: bool | None = None  # None: a bar when stderr is a terminal
    server_side: bool = False  # ClickHouse reads the data files itself (s3() table function)
    parallel_files: int = 2  # data files ClickHouse reads at once, in one statement

    def __post_init__(self):
        if self.parallel_files < 1:
            raise UsageError("--parallel-files must be at least 1")
        if self.batch_rows < 1:
            raise UsageError("--batch-rows must be at least 1")
        if self.tmp_dir is not None and not os.path.isdir(self.tmp_dir):
            raise UsageError(f"--tmp-dir {self.tmp_dir} does not exist or is not a directory")


@dataclass
class ExportResult:
    export_arn: str
    table_name: str
    files_loaded: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    lines_landed: int = 0
    lines_quarantined: int = 0
    errors: list[str] = field(default_factory=list)
    held: bool = False  # left to the run that holds its lease


@dataclass
class LoadResult:
    exports: list[ExportResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # errors outside any one data file

    @property
    def ok(self) -> bool:
        return not self.errors and all(not e.errors for e in self.exports)


@dataclass(frozen=True)
class FilePlan:
    """What to do with one data file, decided from its ledger row alone."""

    load: bool
    resume_after: int = 0  # lines already committed by an earlier, interrupted run


def plan_file(state: FileState | None) -> FilePlan:
    """A loaded file is skipped; any other resumes after its last committed line.

    A failed file committed nothing past its checkpoint (verification happens
    before landing), so it restarts from the same point as an interrupted one.
    """
    if state is None:
        return FilePlan(load=True)
    if state.status == LOADED:
        return FilePlan(load=False)
    return FilePlan(load=True, resume_after=max(state.lines_committed, 0))


def load_exports(s3, store: Store, uri: str, options: LoadOptions | None = None) -> LoadResult:
    """Load every export under ``uri`` (oldest first); returns what happened, never raises for bad files."""
    options = options or LoadOptions()
    location = S3Uri.parse(uri)
    result = LoadResult()
    summary_keys = find_summaries(s3, location)
    if not summary_keys:
        result.errors.append(no_export_message(s3, location))
        return result
    retrying("creating the raw tables", store.ensure_schema)
    loaded = retrying("reading the exports already loaded", store.loaded_exports)
    tables: set[str] = set()
    exports: list[tuple[tuple, LoadedExport | _ExportLoad]] = []  # (sort key, the export), run oldest first
    for key in summary_keys:
        uri = f"s3://{location.bucket}/{key}"
        done = loaded.get(uri)
        if done is not None:  # exports are written once: a loaded one's manifests are not read again
            exports.append((done.sort_key, done))
            tables.add(done.table_name)
            continue
        try:
            summary, files = read_export(s3, location.bucket, key)
        except ManifestError as ex:
            result.errors.append(str(ex))
            continue
        exports.append((summary.sort_key(), _ExportLoad(s3, store, location.bucket, summary, files, uri, options)))
        tables.add(summary.table_name)
    exports.sort(key=lambda e: e[0])
    for _, export in exports:
        if isinstance(export, _ExportLoad):
            result.exports.append(export.run())
            continue
        log.info("%s (%s): all %d data files already loaded", export.export_arn, export.table_name, export.data_files)
        result.exports.append(ExportResult(export.export_arn, export.table_name, files_skipped=export.data_files,
                                           lines_landed=export.lines_landed, lines_quarantined=export.lines_quarantined))
    held = {e.table_name for e in result.exports if e.held}
    for table in sorted(tables):
        if table in held:  # its windows are judged by the run loading the held export
            log.info("%s: export windows not checked, an export of the table being loaded by another run", table)
            continue
        errors, warnings = check_windows(table, store.loaded_windows(table), store.unloaded_windows(table))
        for warning in warnings:
            log.warning("%s", warning)
        result.errors.extend(errors)
    return result


class _ExportLoad:
    """One export loaded by this run: its manifest and data files, where they are, the store and
    the run's options, which every step below shares (and, while its files load, their progress)."""

    def __init__(self, s3, store: Store, bucket: str, summary: ExportSummary, files: list[DataFile], summary_uri: str,
                 options: LoadOptions):
        self.s3, self.store, self.bucket = s3, store, bucket
        self.summary, self.files, self.summary_uri, self.options = summary, files, summary_uri, options
        self.progress: Progress | None = None

    def run(self) -> ExportResult:
        """Load the data files the ledger does not record as loaded, under the export's lease."""
        summary, files, store = self.summary, self.files, self.store
        out, states, plans, todo = self._plan()
        if todo:
            # One run at a time per export (lease.py): an overlapping run leaves it to this one.
            lease = Lease(store, f"export:{summary.export_arn}", "load-export",
                          what=f"{summary.export_arn} ({summary.table_name})")
            try:
                retrying(f"taking the lease on {summary.export_arn}", lease.acquire)
            except LeaseHeldError as ex:  # reported with the run's other errors
                out.errors.append(str(ex))
                out.held = True
                return out
            try:
                # the ledger again, under the lease: a run that held it may have loaded files since
                out, states, plans, todo = self._plan()
                if todo:
                    return self._load(todo, plans, states, out, lease)
            except LeaseHeldError as ex:  # lost while loading (lease.renew): another run may hold it now
                out.errors.append(str(ex))
                out.held = True
                return out
            finally:
                lease.release()
        if not todo:
            log.info("%s (%s): all %d data files already loaded", summary.export_arn, summary.table_name, len(files))
            # A run stopped after its last file but before recording the export loaded (killed, or
            # ClickHouse gone) left it `loading`: nothing is left to load, so record it now, or the
            # window checks and the changes model (a full export's deletes) would never see it.
            status = retrying(f"reading the status of {summary.export_arn}", lambda: store.export_status(summary.export_arn))
            if status != LOADED:
                log.info("%s (%s): recording the export loaded (it was %s)", summary.export_arn, summary.table_name,
                         status or "not recorded")
                retrying(f"recording {summary.export_arn} loaded", lambda: store.record_export(
                    summary, s3_uri=self.summary_uri, data_files=len(files), status=LOADED))
        return out

    def _plan(self):
        """(result so far, ledger states, plans, files to load): what the ledger says is left."""
        summary, files, store = self.summary, self.files, self.store
        out = ExportResult(summary.export_arn, summary.table_name)
        states = retrying(f"reading the ledger of {summary.export_arn}", lambda: store.file_states(summary.export_arn))
        plans = {f.key: plan_file(states.get(f.key)) for f in files}
        for f in files:
            if not plans[f.key].load:
                out.files_skipped += 1
                out.lines_landed += states[f.key].lines_landed
                out.lines_quarantined += states[f.key].lines_quarantined
        return out, states, plans, [f for f in files if plans[f.key].load]

    def _load(self, todo: list[DataFile], plans: dict[str, FilePlan], states: dict[str, FileState], out: ExportResult,
              lease: Lease) -> ExportResult:
        store, bucket, summary, files, options = self.store, self.bucket, self.summary, self.files, self.options
        log.info(
            "%s (%s, %s as of %s): %d of %d data files to load",
            summary.export_arn, summary.table_name, summary.export_type,
            summary.point_in_time.isoformat(), len(todo), len(files),
        )
        retrying(f"recording {summary.export_arn} loading", lambda: store.record_export(
            summary, s3_uri=self.summary_uri, data_files=len(files), status=LOADING))
        progress = self.progress = Progress(len(todo), enabled=options.progress)
        # Files read several to a statement by the engine, `parallel_files` at a time, up to GROUP_FILES:
        # with --server-side from S3 (files of any size, so that large ones are still read side by side);
        # on the embedded engine, files that fit in one batch, downloaded and MD5-checked here first, up
        # to GROUP_LINES lines to a statement (a statement of more lines holds more memory: README "Peak
        # memory"), unless `parallel_files` is 1.  Any other file is a group of its own, loaded by itself.
        local = not options.server_side and options.parallel_files > 1 and store.reads_local_files(options.tmp_dir)

        def groupable(f: DataFile) -> bool:
            if options.server_side:
                return _plain_key(f)
            return local and plans[f.key].resume_after == 0 and f.item_count <= options.batch_rows

        groups = list(_groups(todo, groupable, GROUP_FILES, None if options.server_side else GROUP_LINES))
        # The next file loaded by itself is downloaded and verified in a second thread while this one is
        # inserted (zlib, hashing, sockets and the engine all release the GIL): no ClickHouse call there.
        fetcher = None if options.server_side else _Prefetcher(
            self.s3, bucket, [g[0] for g in groups if len(g) == 1], options, progress)
        # Likewise the next group's local copies are downloaded while this group is read.
        copies = _CopyFetcher(self.s3, bucket, [g for g in groups if len(g) > 1], options, progress) if local else None

        def load(data_file: DataFile, started: bool | None = None):
            """(landed, quarantined, note), or the DataFileError that refused the file."""
            # --server-side reads a file whole, removing any rows of it first: it resumes from line 0.
            resume_after = 0 if fetcher is None else plans[data_file.key].resume_after
            if started is None:
                started = data_file.key in states  # else no row of it can exist: nothing to discard
            try:
                if fetcher is None:
                    return self._file_server_side(data_file, started=started)
                return self._file(data_file, resume_after, fetcher.take(data_file), started=started, together=local)
            except DataFileError as ex:
                # Nothing of a refused file lands past its checkpoint (rows an interrupted run left;
                # --server-side removes what its own failed read left before raising).  Both steps can
                # be done again, so they wait for ClickHouse like the loading itself.
                message = str(ex)

                def refuse() -> None:
                    if started:
                        store.discard_after(summary.export_arn, data_file.key, resume_after)
                    store.record_file(summary, data_file, status=FAILED, lines_committed=resume_after, error=message)

                retrying(f"setting s3://{bucket}/{data_file.key} aside as failed", refuse)
                return ex

        def outcomes():
            """Each group of files is read in one statement; a file the group could not land whole (or
            every file of a group whose statement failed) is then loaded on its own, for its own
            outcome and message.  One after the other, in file order."""
            for group in groups:
                if len(group) == 1:
                    yield load(group[0])
                    continue
                if options.server_side:
                    read = self._group_server_side(group, states)
                else:
                    read = self._group_local(group, states, copies)
                if read.error is not None:
                    log.info("%s: ClickHouse could not read them together (%s); reading them one at a time",
                             read.where, read.error[:300])
                for f in group:
                    yield read.landed[f.key] if f.key in read.landed else load(f, started=True)

        try:
            for outcome in outcomes():
                if isinstance(outcome, DataFileError):
                    out.files_failed += 1
                    out.errors.append(str(outcome))
                    progress.file_done(f"FAILED {outcome}")
                else:
                    landed, quarantined, note = outcome
                    out.files_loaded += 1
                    out.lines_landed += landed
                    out.lines_quarantined += quarantined
                    progress.file_done(note)
                # after every file, counted first: a lease found lapsed here stops the run (lease.py)
                retrying(f"renewing the lease on {summary.export_arn}", lease.renew)
        finally:
            for f in (fetcher, copies):
                if f is not None:
                    f.close()
            progress.close()
        status = FAILED if out.errors else LOADED
        retrying(f"recording {summary.export_arn} {status}", lambda: store.record_export(
            summary, s3_uri=self.summary_uri, data_files=len(files), status=status,
            error="; ".join(out.errors)[:10_000]))
        return out

    def _file(self, data_file: DataFile, committed: int, verified: VerifiedFile, *, started: bool = True,
              together: bool = False) -> tuple[int, int, str]:
        """Insert a verified data file's batches after line ``committed``, checkpointing each; then
        check its line count and mark it loaded.  (landed, quarantined, note)."""
        store, bucket, summary, options, progress = self.store, self.bucket, self.summary, self.options, self.progress
        where = f"s3://{bucket}/{data_file.key}"
        arn, key, size = summary.export_arn, data_file.key, verified.compressed_bytes
        if committed:
            log.info("%s: resuming after line %d", where, committed)

        def checkpoint(lines: int, status: str = LOADING, **counts) -> None:
            store.record_file(summary, data_file, status=status, lines_committed=lines, compressed_bytes=size, **counts)

        def back_to(lines: int):
            """Undo a batch cut off in the middle: its checkpoint (if it was written) and its rows."""
            def undo() -> None:
                checkpoint(lines)
                store.discard_after(arn, key, lines)
            return undo

        try:
            # Rows past the last committed line may exist if the previous run stopped mid-batch.
            retrying(f"starting {where}", back_to(committed) if started else lambda: checkpoint(committed))
            # One insert per segment (a batch), or with ``together`` (the embedded engine reading local
            # files, as _load decides) one per run of whole segments read side by side (_runs), each
            # checkpointed but the last: the file is counted and marked loaded next, and a run stopped
            # before that redoes the last insert.  While ClickHouse is unavailable, an insert is undone
            # and redone (connection.retrying).
            for run in _runs(verified.segments, committed, together):
                first, last = run[0].first_line, run[-1].first_line + run[-1].lines - 1
                skip = max(committed - first + 1, 0)

                def batch(run=run, skip=skip, last=last, first=first) -> None:
                    if len(run) == 1:
                        store.insert_segment(summary, key, run[0], skip)
                    else:
                        try:
                            store.insert_segments(summary, key, run, options.parallel_files, options.tmp_dir)
                        except ServerReadError as ex:  # the engine would not read them by their links
                            log.warning("%s: the engine could not read lines %d-%d together (%s); reading them one "
                                        "batch at a time", where, first, last, str(ex).strip()[:300])
                            back_to(committed)()
                            for segment in run:
                                store.insert_segment(summary, key, segment)
                    if last < verified.lines:
                        checkpoint(last)

                retrying(f"loading lines {first + skip}-{last} of {where}", batch, redo=back_to(committed))
                progress.add_rows(last - first + 1 - skip)
                committed = last
        finally:
            verified.close()
        landed, quarantined, examples = retrying(f"counting the lines of {where}", lambda: store.file_counts(arn, key))
        if landed + quarantined != verified.lines:
            # Cannot happen unless rows were changed behind the loader's back; never call that loaded.
            raise DataFileError(
                f"{where}: {verified.lines} lines read but {landed} landed and {quarantined} quarantined; "
                "rerun to reload the file"
            )
        retrying(f"marking {where} loaded", lambda: checkpoint(
            verified.lines, LOADED, lines_landed=landed, lines_quarantined=quarantined))
        return landed, quarantined, _note(where, landed, quarantined, examples)

    def _file_server_side(self, data_file: DataFile, *, started: bool = True) -> tuple[int, int, str]:
        """ClickHouse reads the gzip file from S3 itself, one reading stream; the loader checks the
        line count after.  The whole file is one unit, as a group is (_group): an interrupted or
        failed file is removed and read again from its first line (ClickHouse commits a large INSERT
        in several parts, so there is no mid-file resume point).  The MD5 cannot be checked: the bytes
        never pass through here.
        """
        where = f"s3://{self.bucket}/{data_file.key}"
        key = data_file.key
        if GLOB_CHARACTERS & set(key):
            raise DataFileError(f"{where}: the key holds one of * ? {{ }}, which s3() reads as a pattern; "
                                "load this export without --server-side")
        read = self._group([data_file], {key} if started else (), where, " (read by ClickHouse)", lambda: (
            self.store.insert_lines_from_s3(self.summary, key, s3_source(self.s3, self.bucket, key))))
        if read.error is not None:
            raise DataFileError(f"{where}: ClickHouse could not read it: {read.error[:500]}")
        if key in read.short:
            raise DataFileError(
                f"{where} has {read.short[key]} lines but the manifest says itemCount {data_file.item_count}")
        return read.landed[key]

    def _group_server_side(self, group: list[DataFile], states: dict[str, FileState]) -> _GroupRead:
        """ClickHouse reads the group from S3 itself (--server-side)."""
        directory, names, where = _group_where(self.bucket, group)
        return self._group(group, states, where, " (read by ClickHouse)", lambda: self.store.insert_files_from_s3(
            self.summary, directory, s3_source(self.s3, self.bucket, directory, names), self.options.parallel_files))

    def _group_local(self, group: list[DataFile], states: dict[str, FileState], copies: "_CopyFetcher") -> _GroupRead:
        """The embedded engine reads the group from local copies, downloaded with their MD5 checked
        first; a file that cannot be downloaded or fails its MD5 is left out (its caller loads it on
        its own, which refuses it)."""
        fetched = copies.take(group)
        try:
            readable = [f for f in group if f.key in fetched]
            _, _, where = _group_where(self.bucket, readable or group)
            if not readable:
                return _GroupRead(where)
            return self._group(readable, states, where, "", lambda: self.store.insert_local_files(
                self.summary, [(f.key, fetched[f.key].file) for f in readable], self.options.parallel_files,
                self.options.tmp_dir), {key: copy.compressed_bytes for key, copy in fetched.items()})
        finally:
            for copy in fetched.values():
                copy.close()

    def _group(self, group: list[DataFile], may_have_rows, where: str, how: str, read,
               sizes: dict[str, int] | None = None) -> _GroupRead:
        """``read()`` has ClickHouse read a group of whole data files (one, or several) in one statement.

        The group is one unit while it is read: interrupted, or ClickHouse unavailable, its rows are
        removed and it is read again whole.  A statement that fails for the data's sake (a damaged
        gzip, a missing object) has its rows removed too (``error``).  After it, a file whose line
        count differs from itemCount has its rows removed (``short``); the others are marked loaded
        (``landed``).  ``may_have_rows``: the keys whose rows an earlier run may have left.
        """
        store, bucket, summary = self.store, self.bucket, self.summary
        arn = summary.export_arn
        sizes = sizes or {}
        out = _GroupRead(where)

        def start() -> None:
            for f in group:
                if f.key in may_have_rows:  # else no row of it can exist: nothing to remove
                    store.discard_after(arn, f.key, 0)
            store.record_files(summary, [(f, {"status": LOADING}) for f in group])

        def undo() -> None:
            for f in group:
                store.discard_after(arn, f.key, 0)

        retrying(f"starting {where}", start)
        try:
            retrying(f"reading {where}", read, redo=undo)
        except ServerReadError as ex:  # S3 or the data itself (ClickHouse's own unavailability is retried above)
            retrying(f"removing what a failed read of {where} left", undo)
            out.error = str(ex).strip().splitlines()[0] if str(ex).strip() else type(ex).__name__
            return out
        counts = retrying(f"counting the lines of {where}", lambda: store.files_counts(arn, [f.key for f in group]))
        marks = []
        for f in group:
            landed, quarantined = counts[f.key]
            if landed + quarantined != f.item_count:
                retrying(f"removing the lines of s3://{bucket}/{f.key}", lambda f=f: store.discard_after(arn, f.key, 0))
                out.short[f.key] = landed + quarantined
                continue
            examples = []
            if quarantined:
                examples = retrying(f"reading the quarantine of s3://{bucket}/{f.key}",
                                    lambda f=f: store.quarantine_examples(arn, f.key))
            marks.append((f, {"status": LOADED, "lines_committed": f.item_count, "lines_landed": landed,
                              "lines_quarantined": quarantined, "compressed_bytes": sizes.get(f.key, 0)}))
            note = _note(f"s3://{bucket}/{f.key}", landed, quarantined, examples, how)
            out.landed[f.key] = (landed, quarantined, note)
        if marks:
            retrying(f"marking {where} loaded", lambda: store.record_files(summary, marks))
        self.progress.add_rows(sum(landed + quarantined for landed, quarantined, _ in out.landed.values()))
        return out


class _Downloads:
    """Data files downloaded in threads of their own (``pending``: key -> future) ahead of their use."""

    def __init__(self, workers: int):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dynamodb-cdc-fetch")
        self.pending: dict[str, object] = {}

    def close(self) -> None:
        """Wait for downloads still running and drop what was fetched ahead and not used."""
        self.pool.shutdown(wait=True)
        for future in self.pending.values():
            if not future.cancelled() and future.exception() is None:
                future.result().close()
        self.pending.clear()


class _CopyFetcher(_Downloads):
    """Downloads the local copies (fetch_compressed) of a group's files, and those of the next
    group while this one is read, two files at a time; the first group's from the start.  Link
    directories that killed loaders left in the same place are removed first."""

    def __init__(self, s3, bucket, groups: list[list[DataFile]], options, progress):
        super().__init__(2)
        self.groups = groups
        self.args = (s3, bucket)
        self.kwargs = {"tmp_dir": options.tmp_dir, "on_bytes": progress.add_bytes}
        remove_stale_links(options.tmp_dir)
        self._start(0)

    def _start(self, index: int) -> None:
        for f in self.groups[index] if index < len(self.groups) else []:
            if f.key not in self.pending:
                self.pending[f.key] = self.pool.submit(fetch_compressed, *self.args, f, **self.kwargs)

    def take(self, group: list[DataFile]) -> dict[str, "CompressedFile"]:
        """{key: local copy} of the group's files that were downloaded and verified."""
        index = self.groups.index(group)
        self._start(index)
        self._start(index + 1)
        out = {}
        for f in group:
            try:
                out[f.key] = self.pending.pop(f.key).result()
            except DataFileError:
                pass
        return out


class _Prefetcher(_Downloads):
    """Downloads and verifies data files one ahead of the file being inserted."""

    def __init__(self, s3, bucket, files: list[DataFile], options, progress):
        super().__init__(1)
        self.files = files
        self.position = {f.key: i for i, f in enumerate(files)}  # (list.index: quadratic over many files)
        self.args = (s3, bucket)
        self.kwargs = {"tmp_dir": options.tmp_dir, "on_bytes": progress.add_bytes,
                       "max_rows": options.batch_rows, "max_bytes": options.batch_bytes}
        self._start(0)

    def _start(self, index: int) -> None:
        if index < len(self.files) and self.files[index].key not in self.pending:
            f = self.files[index]
            self.pending[f.key] = self.pool.submit(fetch_data_file, *self.args, f, **self.kwargs)

    def take(self, data_file: DataFile) -> "VerifiedFile":
        """This file, verified (raises DataFileError as fetch_data_file does); the next one starts.
        A file not in the list (one a group could not land) is fetched now."""
        index = self.position.get(data_file.key)
        if index is None or self.files[index] != data_file:
            return self.pool.submit(fetch_data_file, *self.args, data_file, **self.kwargs).result()
        self._start(index)
        future = self.pending.pop(data_file.key)
        self._start(index + 1)
        return future.result()


def _runs(segments: list[Segment], committed: int, together: bool) -> list[list[Segment]]:
    """The segments past line ``committed`` in inserts: with ``together``, runs of up to GROUP_FILES
    whole segments and GROUP_LINES lines (a segment the resume point cuts is read alone);
    else one each."""
    pending = [s for s in segments if s.first_line + s.lines - 1 > committed]
    return list(_groups(pending, lambda s: together and s.first_line > committed, GROUP_FILES, GROUP_LINES,
                        lines=lambda s: s.lines, folder=lambda s: None))


def _note(where: str, landed: int, quarantined: int, examples, how: str = "") -> str:
    """A loaded file's progress line; its quarantined lines are also logged as a warning."""
    note = f"{where}: {landed:,} lines landed{how}"
    if quarantined:
        reasons = ", ".join(f"line {n}: {err}" for n, err in examples)
        note += f", {quarantined:,} quarantined ({reasons}{', ...' if quarantined > len(examples) else ''})"
        log.warning("%s: %d lines set aside in quarantine (%s)", where, quarantined, reasons)
    return note


GLOB_CHARACTERS = set("*?{}")


def s3_source(s3, bucket: str, key: str, names: list[str] | None = None):
    """The URL and credentials ClickHouse needs to read s3://bucket/key itself, from the same
    boto3 client (endpoint, region and credential chain) the loader uses.  With ``names``, ``key``
    is a directory (ending in "/") and the URL names those files of it as a {a,b,...} pattern."""
    from urllib.parse import quote

    from .store import S3Source

    endpoint = s3.meta.endpoint_url.rstrip("/")
    url = f"{endpoint}/{bucket}/{quote(key)}"  # path style: works on AWS, moto, MinIO
    if names is not None:
        url += "{" + ",".join(names) + "}"  # plain names (_plain_key): nothing to quote
    import boto3

    creds = boto3.session.Session().get_credentials()  # the default chain, as s3_client() uses
    frozen = creds.get_frozen_credentials() if creds is not None else None
    if frozen is None:
        return S3Source(url)
    return S3Source(url, frozen.access_key or "", frozen.secret_key or "", frozen.token or "")


GROUP_FILES = 16  # data files read in one statement at most
GROUP_LINES = 500_000  # on the embedded engine, lines read in one statement at most (its memory follows them)
PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")  # a name that can stand in an s3() {a,b,...} pattern as it is


def _plain_key(f: DataFile) -> bool:
    """Whether --server-side may read this file in a group: a plain name in a folder without
    pattern characters, and some lines (chDB 4.4 fails a {a,b,...} statement naming a missing
    object, but were a pattern matched by listing the folder, a missing file would just not match,
    and a count of 0 could not tell)."""
    directory, _, name = f.key.rpartition("/")
    return bool(PLAIN_NAME.match(name)) and not GLOB_CHARACTERS & set(directory) and f.item_count > 0


def _groups(items: list, groupable, size: int, max_lines: int | None = None,
            lines=lambda f: f.item_count, folder=lambda f: f.key.rpartition("/")[0]):
    """Runs of up to ``size`` consecutive groupable items of one folder (and of up to ``max_lines``
    lines); any other item is a group of its own.  Data files by default (their itemCount and the
    folder of their key); _runs groups a file's segments with the same rule."""
    group: list = []
    for f in items:
        if not groupable(f):
            if group:
                yield group
                group = []
            yield [f]
            continue
        if group and (len(group) == size or folder(group[0]) != folder(f)
                      or max_lines is not None and sum(map(lines, group)) + lines(f) > max_lines):
            yield group
            group = []
        group.append(f)
    if group:
        yield group


def _group_where(bucket: str, group: list[DataFile]) -> tuple[str, list[str], str]:
    """(the group's folder, its files' names, how messages name the group)."""
    directory = group[0].key.rpartition("/")[0] + "/"
    names = [f.key[len(directory):] for f in group]
    return directory, names, f"s3://{bucket}/{directory}{{{','.join(names)}}}"


@dataclass
class _GroupRead:
    """What reading a group of data files in one statement (_ExportLoad._group) gave."""

    where: str  # how messages name the group
    landed: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # the files landed whole: (landed, quarantined, note)
    error: str | None = None  # the statement failed (ClickHouse's first line); nothing of the group stayed
    short: dict[str, int] = field(default_factory=dict)  # lines read of each file that missed its itemCount (rows removed)
