"""A spider contract for callbacks that yield several kinds of item.

``@scrapes`` checks every item a callback returns, but a detail callback returns its page
(:class:`~riskcrawl.items.PageItem`) and the record parsed from it, which share only the
provenance fields. ``@record`` checks the records of one type::

    @record court_record record_id subject_name case_no filing_date

passes when the callback returned at least one ``court_record`` and every one of them
has a non-empty value for each listed field.
"""

from __future__ import annotations

from typing import Any

from itemadapter import ItemAdapter, is_item
from scrapy.contracts import Contract
from scrapy.exceptions import ContractFail


class RecordContract(Contract):
    name = "record"

    def post_process(self, output: list[Any]) -> None:
        record_type, fields = self.args[0], self.args[1:]
        records = [
            ItemAdapter(x)
            for x in output
            if is_item(x) and ItemAdapter(x).get("record_type") == record_type
        ]
        if not records:
            raise ContractFail(f"Returned no {record_type} record")
        for record in records:
            empty = [f for f in fields if record.get(f) in (None, "", [])]
            if empty:
                raise ContractFail(f"{record_type} without {', '.join(empty)}")
