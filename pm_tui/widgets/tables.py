"""LiveTable: the dashboard's table, rows keyed by object id, updated cell by cell.

Textual's DataTable re-renders every visible cell after any change (its caches are
keyed on a global update counter), which costs tens of milliseconds per frame at
100 status changes a second. LiveTable keeps one rendered strip per row: a
status change re-renders that row only and refreshes one line of the screen; a
re-sort reorders ids and redraws visible rows from the cache.

``put_row`` adds a row or rewrites the cells whose value changed (never the
table); ``want_sort`` re-sorts now or, under a burst, at most every
``SORT_INTERVAL`` seconds, keeping the cursor on its row (a cursor nobody moved
stays on the top row, where the worst problem is).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text
PADDING = 1


@dataclass(frozen=True)
class ColumnSpec:
    """A column: ``priority`` 0 always shows; higher ones drop first when narrow."""

    key: str
    label: str
    width: int
    priority: int = 0
    grow: bool = False


def fit_columns(specs: Sequence[ColumnSpec], width: int, padding: int = 2) -> list[ColumnSpec]:
    """The columns that fit in ``width`` cells; leftover space goes to a ``grow`` column."""
    chosen = list(specs)
    while chosen and sum(c.width + padding for c in chosen) > width:
        worst = max(chosen, key=lambda c: (c.priority, -chosen.index(c)))
        if worst.priority == 0:
            break
        chosen.remove(worst)
    spare = width - sum(c.width + padding for c in chosen)
    growers = [c for c in chosen if c.grow]
    if spare > 0 and growers:
        grower = growers[0]
        index = chosen.index(grower)
        chosen[index] = ColumnSpec(
            grower.key, grower.label, grower.width + spare, grower.priority, True
        )
    return chosen


def clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[: max(0, width - 1)] + "…"


def _plain(value: Cell | None) -> str:
    if value is None:
        return ""
    return value.plain if isinstance(value, Text) else str(value)


def _same(a: Cell | None, b: Cell) -> bool:
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans
    return a == b


class LiveTable(ScrollView, can_focus=True):
    """Rows keyed by integer ids, a fixed header, a row cursor; cells updated in place."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "live-table--header",
        "live-table--cursor",
        "live-table--marked",
    }
    DEFAULT_CSS = """
    LiveTable {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
        overflow-x: hidden;
    }
    LiveTable > .live-table--header {
        text-style: bold;
        background: $panel;
        color: $foreground;
    }
    LiveTable > .live-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    LiveTable > .live-table--marked {
        background: $accent 30%;
        text-style: bold;
    }
    LiveTable:focus > .live-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "select", show=False),
        Binding("up,k", "cursor_up", "up", show=False),
        Binding("down,j", "cursor_down", "down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
        Binding("home,ctrl+home", "scroll_top", "top", show=False),
        Binding("end,ctrl+end", "scroll_bottom", "bottom", show=False),
        Binding("space", "toggle_mark", "mark", show=False),
    ]
    #: Re-sorting under a burst of changes happens at most this often (seconds).
    SORT_INTERVAL = 0.5

    class _RowMessage(Message):
        def __init__(self, table: LiveTable, row_id: int | None) -> None:
            super().__init__()
            self.table = table
            self.row_id = row_id

        @property
        def control(self) -> LiveTable:
            return self.table

    class Highlighted(_RowMessage):
        """The cursor is on another row (or another row came under it)."""

    class Selected(_RowMessage):
        """``enter`` (or a click on the highlighted row)."""

        row_id: int

    class HeaderClicked(Message):
        """A click on a column's header (``key``: the column)."""

        def __init__(self, table: LiveTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LiveTable:
            return self.table

    class Marked(Message):
        """A row was marked or unmarked."""

        def __init__(self, table: LiveTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> LiveTable:
            return self.table

    class Refit(Message):
        """The columns changed with the table's width: fill it again."""

        def __init__(self, table: LiveTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(
        self,
        *,
        id: str | None = None,
        classes: str | None = None,
        auto_specs: Sequence[ColumnSpec] | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.specs: list[ColumnSpec] = []
        self._labels: dict[str, str] = {}
        self._rows: dict[int, dict[str, Cell]] = {}
        self._order: list[int] = []
        self._index: dict[int, int] = {}
        self._strips: dict[int, Strip] = {}
        self._header: Strip | None = None
        self._cursor = 0
        self._bulk = False
        self._highlighted: int | None = None
        self.pinned_top = True
        #: The column whose header carries the sort marker.
        self.sorted_column: str | None = None
        self.sort_key: Callable[[int], Any] | None = None
        self.sort_reverse = False
        self.sort_wanted = False
        #: Every row's key may have changed (``want_sort()``) / these rows' keys did.
        self._sort_all = False
        self._sort_rows: set[int] = set()
        #: Each row's sort key as of the last sort (for putting a changed row back).
        self._keys: dict[int, Any] = {}
        self._sorted_at = 0.0
        self.cell_writes = 0
        self.rebuilds = 0
        #: Called with the rows on screen when others may have come into view (a
        #: scroll, a re-sort, a row gone): cells that age ("seen 5s") are kept
        #: fresh on screen only, not in every one of thousands of rows.
        self.rows_shown: Callable[[list[int]], None] | None = None
        self.auto_specs = list(auto_specs) if auto_specs else None
        #: Rows marked with space (bulk actions act on them); only where ``markable``.
        self.marked: set[int] = set()
        self.markable = False
        if self.auto_specs:
            self.set_columns(fit_columns(self.auto_specs, 80))

    # -- columns ---------------------------------------------------------------------

    def set_columns(self, specs: Sequence[ColumnSpec]) -> bool:
        """Replace the columns (and drop the rows); False if they are already these."""
        if list(specs) == self.specs:
            return False
        self.specs = list(specs)
        self._labels = {s.key: s.label for s in specs}
        self._rows.clear()
        self._keys.clear()
        self._order.clear()
        self._index.clear()
        self._forget()
        return True

    @property
    def column_keys(self) -> list[str]:
        return [s.key for s in self.specs]

    @property
    def labels(self) -> list[str]:
        return [self._labels.get(s.key, s.label) for s in self.specs]

    def mark_sorted(self, key: str | None) -> None:
        """Show ``▾`` after the header of column ``key`` (in its padding: the label keeps
        every letter)."""
        if key != self.sorted_column:
            self.sorted_column = key
            self._header = None
            self.refresh(Region(0, 0, self.size.width, 1))

    def set_label(self, key: str, label: str) -> None:
        if self._labels.get(key) != label:
            self._labels[key] = label
            self._header = None
            self.refresh(Region(0, 0, self.size.width, 1))

    # -- rows ------------------------------------------------------------------------

    def put_row(self, row_id: int, cells: Mapping[str, Cell]) -> bool:
        """Add the row (at the end), or update the cells that changed. True if it changed."""
        widths = {s.key: s.width for s in self.specs}
        values = {
            key: (clip(value, widths[key]) if isinstance(value, str) else value)
            for key, value in cells.items()
            if key in widths
        }
        old = self._rows.get(row_id)
        if old is None:
            self._rows[row_id] = values
            self._index[row_id] = len(self._order)
            self._order.append(row_id)
            self.cell_writes += len(values)
            if not self._bulk:
                self._resized()
                self._refresh_row(row_id)
                self._check_highlight()
            return True
        changed = 0
        for key, value in values.items():
            if not _same(old.get(key), value):
                old[key] = value
                changed += 1
        if changed:
            self.cell_writes += changed
            self._strips.pop(row_id, None)
            self._refresh_row(row_id)
        return bool(changed)

    def drop_row(self, row_id: int) -> bool:
        if self._rows.pop(row_id, None) is None:
            return False
        self.marked.discard(row_id)
        self._keys.pop(row_id, None)
        self._order.remove(row_id)
        self._reindex()
        self._strips.pop(row_id, None)
        self._resized()
        self._cursor = min(self._cursor, max(0, len(self._order) - 1))
        self.refresh()
        self._check_highlight()
        self._shown()
        return True

    def has_row(self, row_id: int) -> bool:
        return row_id in self._rows

    @property
    def row_ids(self) -> list[int]:
        return list(self._order)

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def visible_row_ids(self) -> list[int]:
        """The rows on screen now, top to bottom."""
        top = int(self.scroll_offset.y)
        return self._order[top : top + max(0, self.size.height - 1)]

    def _shown(self) -> None:
        if self.rows_shown is not None:
            self.rows_shown(self.visible_row_ids)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._shown()

    def cell_text(self, row_id: int, key: str) -> str:
        return _plain(self._rows.get(row_id, {}).get(key))

    def replace_rows(self, rows: Iterable[tuple[int, Mapping[str, Cell]]]) -> None:
        """Fill the table from scratch (a reload or a new filter, never a status change)."""
        selected = self.selected_id
        at_top = self.pinned_top
        self.rebuilds += 1
        self._rows.clear()
        self._keys.clear()
        self._order.clear()
        self._index.clear()
        self._strips.clear()
        self._bulk = True
        try:
            for row_id, cells in rows:
                self.put_row(row_id, cells)
        finally:
            self._bulk = False
        self._resized()
        self.sort_wanted = False
        self.marked &= self._rows.keys()
        if selected is not None and not at_top and selected in self._rows:
            self._move(self._index[selected])
        else:
            self._cursor = 0 if at_top else min(self._cursor, max(0, len(self._order) - 1))
        self.refresh()
        self._check_highlight()

    # -- cursor ------------------------------------------------------------------------

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def selected_id(self) -> int | None:
        if not self._order:
            return None
        return self._order[min(self._cursor, len(self._order) - 1)]

    def select(self, row_id: int) -> bool:
        """Put the cursor on ``row_id`` (an explicit choice: it unpins the top row)."""
        if row_id not in self._index:
            return False
        self.pinned_top = False
        self._move(self._index[row_id])
        return True

    def _move(self, index: int) -> None:
        if not self._order:
            self._cursor = 0
            return
        index = max(0, min(index, len(self._order) - 1))
        old = self._cursor
        self._cursor = index
        if old != index:
            self._refresh_index(old)
            self._refresh_index(index)
        self._scroll_to_cursor()
        self._check_highlight()

    def _user_move(self, index: int) -> None:
        self._move(index)
        self.pinned_top = self._cursor == 0

    def _page(self) -> int:
        return max(1, self.size.height - 2)

    def action_cursor_up(self) -> None:
        self._user_move(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._user_move(self._cursor + 1)

    def action_page_up(self) -> None:
        self._user_move(self._cursor - self._page())

    def action_page_down(self) -> None:
        self._user_move(self._cursor + self._page())

    def action_scroll_top(self) -> None:
        self._user_move(0)

    def action_scroll_bottom(self) -> None:
        self._user_move(len(self._order) - 1)

    def action_select_cursor(self) -> None:
        row_id = self.selected_id
        if row_id is not None:
            self.post_message(self.Selected(self, row_id))

    def column_at(self, x: int) -> str | None:
        """The key of the column under screen column ``x`` of the table."""
        left = 0
        for spec in self.specs:
            right = left + spec.width + 2 * PADDING
            if left <= x < right:
                return spec.key
            left = right
        return None

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            key = self.column_at(event.x)
            if key is not None:
                self.post_message(self.HeaderClicked(self, key))
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if event.y < 1 or not 0 <= index < len(self._order):
            return
        if index == self._cursor:
            self.action_select_cursor()
        else:
            self._user_move(index)

    def _check_highlight(self) -> None:
        current = self.selected_id
        if current != self._highlighted:
            self._highlighted = current
            self.post_message(self.Highlighted(self, current))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False)

    # -- marks -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_mark":
            return self.markable
        return True

    def action_toggle_mark(self) -> None:
        """Mark the row under the cursor (or unmark it) and go to the next one."""
        row_id = self.selected_id
        if row_id is None:
            return
        if row_id in self.marked:
            self.marked.discard(row_id)
        else:
            self.marked.add(row_id)
        self._strips.pop(row_id, None)
        self._refresh_row(row_id)
        self.post_message(self.Marked(self))
        self._user_move(self._cursor + 1)

    @property
    def marked_ids(self) -> list[int]:
        """The marked rows, in the table's order."""
        return [row_id for row_id in self._order if row_id in self.marked]

    def clear_marks(self) -> None:
        if self.marked:
            self.marked.clear()
            self._strips.clear()
            self.refresh()
            self.post_message(self.Marked(self))

    # -- order ---------------------------------------------------------------------------

    def order_by(self, key: Callable[[int], Any], *, reverse: bool = False) -> None:
        """How rows are ordered (a function of the row's object id)."""
        self.sort_key = key
        self.sort_reverse = reverse
        self._keys.clear()

    def want_sort(self, row_ids: Iterable[int] | None = None) -> None:
        """Re-sort now, or (if the last sort was under ``SORT_INTERVAL`` ago) soon.

        ``row_ids``: only these rows' keys changed. They are taken out and put back
        in place (binary search over the others' remembered keys) instead of every
        key being computed again: thousands of rows, a few of them changing."""
        if row_ids is None:
            self._sort_all = True
        else:
            self._sort_rows.update(row_ids)
        self.sort_wanted = True
        if time.monotonic() - self._sorted_at >= self.SORT_INTERVAL:
            self._sort_pending()

    def _sort_tick(self) -> None:
        if self.sort_wanted:
            self._sort_pending()

    def _sort_pending(self) -> bool:
        key = self.sort_key
        keys = self._keys
        moved = {r for r in self._sort_rows if r in self._rows}
        moved.update(r for r in self._order if r not in keys)  # rows added since
        if key is None or self._sort_all or self.sort_reverse or 8 * len(moved) > len(keys):
            return self.sort_now()
        self.sort_wanted = False
        self._sorted_at = time.monotonic()
        self._sort_rows.clear()
        if not moved:
            return False
        wanted = [r for r in self._order if r not in moved]
        for row_id in moved:
            keys[row_id] = key(row_id)
        for row_id in sorted(moved, key=keys.__getitem__):
            bisect.insort(wanted, row_id, key=keys.__getitem__)
        return self._reorder(wanted)

    def sort_now(self) -> bool:
        """Put the rows in order (if they are not already), every key computed again."""
        self.sort_wanted = False
        self._sort_all = False
        self._sort_rows.clear()
        self._sorted_at = time.monotonic()
        key = self.sort_key
        if key is None or len(self._order) < 2:
            return False
        keys = self._keys
        keys.clear()
        keys.update((row_id, key(row_id)) for row_id in self._order)
        return self._reorder(sorted(self._order, key=keys.__getitem__, reverse=self.sort_reverse))

    def _reorder(self, wanted: list[int]) -> bool:
        if wanted == self._order:
            return False
        selected = self.selected_id
        self._order = wanted
        self._reindex()
        if self.pinned_top and self._cursor == 0:
            self._move(0)
        elif selected is not None:
            self._move(self._index[selected])
        self.refresh()
        self._check_highlight()
        self._shown()
        return True

    def _reindex(self) -> None:
        self._index = {row_id: i for i, row_id in enumerate(self._order)}

    # -- rendering -------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_interval(self.SORT_INTERVAL / 2, self._sort_tick)

    def on_resize(self, event: events.Resize) -> None:
        specs, width = self.auto_specs, event.size.width
        if specs and width and self.set_columns(fit_columns(specs, width - 1)):
            self.post_message(self.Refit(self))
        self._header = None
        self._resized()
        self._scroll_to_cursor()
        self._shown()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget()

    def on_focus(self) -> None:
        self._refresh_index(self._cursor)

    def on_blur(self) -> None:
        self._refresh_index(self._cursor)

    def _forget(self) -> None:
        self._strips.clear()
        self._header = None
        self.refresh()

    def _resized(self) -> None:
        width = sum(s.width + 2 * PADDING for s in self.specs)
        self.virtual_size = Size(width, len(self._order) + 1)

    def _refresh_index(self, index: int) -> None:
        y = index - int(self.scroll_offset.y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _refresh_row(self, row_id: int) -> None:
        index = self._index.get(row_id)
        if index is not None:
            self._refresh_index(index)

    def _column_index(self, key: str | None) -> int | None:
        keys = self.column_keys
        return keys.index(key) if key in keys else None

    def _cells(
        self, values: Sequence[tuple[Cell, int]], style: Style, marked: int | None = None
    ) -> Strip:
        segments: list[Segment] = []
        console = self.app.console
        pad = Segment(" " * PADDING, style)
        for index, (value, width) in enumerate(values):
            mark = index == marked
            if mark and isinstance(value, str) and len(value) < width:
                value, mark = value + "▾", False  # room inside the column: right after it
            segments.append(pad)
            if isinstance(value, Text):
                text = value.copy()
                text.truncate(width, overflow="ellipsis", pad=True)
                own = value.style
                cell_style = style + (Style.parse(own) if isinstance(own, str) else own)
                segments.extend(Segment.apply_style(text.render(console, end=""), cell_style))
            else:
                segments.append(Segment(clip(str(value), width).ljust(width), style))
            segments.append(Segment("▾" + " " * (PADDING - 1), style) if mark else pad)
        return Strip(segments).simplify()

    def _row_strip(self, row_id: int, base: Style) -> Strip:
        strip = self._strips.get(row_id)
        if strip is None:
            cells = self._rows[row_id]
            if row_id in self.marked:
                # A mark as well as the colour: "*" reads in a monochrome terminal too.
                base = base + self.get_component_rich_style("live-table--marked")
            strip = self._cells([(cells.get(s.key, ""), s.width) for s in self.specs], base)
            if row_id in self.marked:
                strip = Strip.join([Strip([Segment("*", base)]), strip.crop(1)])
            self._strips[row_id] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            if self._header is None:
                header_style = base + self.get_component_rich_style("live-table--header")
                labels = [(self._labels.get(s.key, s.label), s.width) for s in self.specs]
                self._header = self._cells(
                    labels, header_style, marked=self._column_index(self.sorted_column)
                ).extend_cell_length(width, header_style)
            return self._header.crop(0, width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self._order):
            return Strip.blank(width, base)
        strip = self._row_strip(self._order[index], base)
        if index == self._cursor:
            # A marker as well as the colour: the cursor shows in a monochrome terminal too.
            cursor = self.get_component_rich_style("live-table--cursor")
            sign = "*" if self._order[index] in self.marked else "▸"
            marked = Strip.join([Strip([Segment(sign, base)]), strip.crop(1)])
            strip = Strip(Segment.apply_style(marked, post_style=cursor))
            return strip.extend_cell_length(width, base + cursor).crop(0, width)
        return strip.extend_cell_length(width, base).crop(0, width)
