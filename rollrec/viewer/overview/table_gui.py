"""A clickable table in the viser control panel, drawn from a `TableModel`.

viser has no table element, so each row is a button group: one button per cell, equal widths,
so the cells line up in columns. Clicking any cell of a row calls ``on_row(row)``; clicking a
header sorts by that column (again: the other way); the pager turns pages. The row label is the
row's place in the current order (``▶`` marks the rows ``is_current`` says are selected).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import viser

from rollrec.viewer.overview.table import TableModel
from rollrec.viewer.text import pick


class ButtonTable:
    """``model`` shown ``model.page_size`` rows at a time in the current GUI container."""

    def __init__(self, gui: viser.GuiApi, model: TableModel, *, lock: threading.RLock,
                 on_row: Callable[[int], None], is_current: Callable[[int], bool] = lambda row: False):
        self._model = model
        self._lock = lock
        self._on_row = on_row
        self._is_current = is_current
        names = tuple(model.columns)
        self.header = gui.add_button_group("Sort by", names, hint="Click a column to sort by it; again to reverse.")
        self.header.on_click(lambda e: self._sort(e.target.value))
        self.rows: list[viser.GuiButtonGroupHandle] = []
        self._shown: list[int] = []
        for i in range(model.page_size):
            row = gui.add_button_group(f"{i + 1}", ("",) * len(names), visible=False)
            row.on_click(lambda _e, i=i: self._click(i))
            self.rows.append(row)
        self.pager = gui.add_button_group("Page", ("◀ Previous", "Next ▶"))
        self.pager.on_click(lambda e: self._turn(-1 if e.target.value == "◀ Previous" else 1 if e.target.value == "Next ▶"
                                                 else 0))
        self.status = gui.add_markdown("")
        self.refresh()

    @property
    def model(self) -> TableModel:
        return self._model

    def set_model(self, model: TableModel) -> None:
        """Show ``model`` instead (same page size: the rows on screen are reused)."""
        if model.page_size != self._model.page_size or len(model.columns) != len(self._model.columns):
            raise ValueError("set_model needs the same page size and number of columns")
        self._model = model
        self.refresh()

    def _sort(self, label: object) -> None:
        name = label.rstrip(" ▲▼") if isinstance(label, str) else None
        if pick(name, tuple(self._model.columns)) is None:  # not a column: a client may send anything
            return
        with self._lock:
            self._model.sort(name)
            self.refresh()

    def _turn(self, delta: int) -> None:
        if not delta:
            return
        with self._lock:
            self._model.turn(delta)
            self.refresh()

    def _click(self, i: int) -> None:
        with self._lock:
            if i < len(self._shown):
                self._on_row(self._shown[i])

    def shown_rows(self) -> list[int]:
        """Model rows on screen, top to bottom."""
        return list(self._shown)

    def refresh(self) -> None:
        """Redraw the header, the rows of the current page and the status line."""
        m = self._model
        arrow = " ▼" if m.descending else " ▲"
        self.header.options = tuple(name + (arrow if name == m.sort_by else "") for name in m.columns)
        self._shown = [int(r) for r in m.page_rows()]
        first = m.page * m.page_size
        for i, handle in enumerate(self.rows):
            if i < len(self._shown):
                row = self._shown[i]
                handle.options = tuple(m.cells(row))
                handle.label = ("▶ " if self._is_current(row) else "") + f"{first + i + 1}"
                handle.visible = True
            else:
                handle.visible = False
        self.status.content = m.page_status()

    def refresh_marks(self) -> None:
        """Update only the ``▶`` marks (the selection changed, the page did not)."""
        first = self._model.page * self._model.page_size
        for i, row in enumerate(self._shown):
            label = ("▶ " if self._is_current(row) else "") + f"{first + i + 1}"
            if self.rows[i].label != label:
                self.rows[i].label = label
