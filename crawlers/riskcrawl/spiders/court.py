"""Court enforcement and dishonest-debtor lists (GBK pages).

List pages (20 cases each, newest first, pagination) lead to case pages, each parsed into
one ``court_record``. Cases repeated at the top of the next list page are requested once
(the dupefilter). With ``-a names=张三,李四`` (optionally ``name:1234`` with the last four
characters of the ID) the spider instead submits the search form of the first list page
for each name and follows the results.

Contracts (``scrapy check court``) need the site on http://127.0.0.1:8765
(``riskctl site serve``).
"""

from __future__ import annotations

from typing import Any

from scrapy import FormRequest, Request
from scrapy.http import Response

from riskcrawl import parsers
from riskcrawl.spiders.base import RiskSpider


class CourtSpider(RiskSpider):
    name = "court"
    record_type = "court_record"

    def __init__(self, names: str | None = None, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.names: list[tuple[str, str | None]] = []
        for raw in (names or "").replace("，", ",").split(","):
            name, _, tail = raw.strip().partition(":")
            if name:
                self.names.append((name, tail.strip() or None))

    async def start(self):
        callback = self.parse_search_form if self.names else self.parse_list
        for url in self.start_urls:
            yield Request(url, callback=callback, errback=self.on_error)

    def parse_list(self, response: Response):
        """A list page: the page, then every case on it and every other list page.

        @url http://127.0.0.1:8765/court/list?page=1
        @returns items 1 1
        @returns requests 21
        @scrapes url content_hash page_kind body crawl_id
        """
        if page := self.page_item(response, "list"):
            yield page
        listing = parsers.parse_court_list(self.text(response), response.url)
        yield from self.follow_listing(listing, self.parse_case)

    def parse_case(self, response: Response):
        """A case page: the page and its court_record (or a reject without 案号).

        @url http://127.0.0.1:8765/court/case/cd02193cacffd316.html
        @returns items 2 2
        @returns requests 0 0
        @scrapes url fetched_at content_hash crawl_id
        @record court_record record_id subject_name subject_type court case_no filing_date list_type
        """
        yield from self.parse_detail(response, "detail", parsers.parse_court_detail)

    def parse_search_form(self, response: Response):
        """A list page used for its search form: one query per name given with ``-a names``.

        @url http://127.0.0.1:8765/court/list?page=1
        @returns items 0 0
        @returns requests 0 0
        """
        for name, tail in self.names:
            formdata = {"name": name}
            if tail:
                formdata["id_tail"] = tail
            yield FormRequest.from_response(
                response,
                formid="case-search",
                formdata=formdata,
                callback=self.parse_search,
                errback=self.on_error,
            )

    def parse_search(self, response: Response):
        """Search results: the page and the case pages it lists.

        @url http://127.0.0.1:8765/court/search?name=%E7%8E%8B%E6%B3%A2%E5%AE%81
        @returns items 1 1
        @returns requests 2 2
        @scrapes url content_hash page_kind body
        """
        if page := self.page_item(response, "search"):
            yield page
        for entry in parsers.parse_court_list(self.text(response), response.url)["entries"]:
            yield Request(entry["url"], callback=self.parse_case, errback=self.on_error)
