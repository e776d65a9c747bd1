"""Regulator penalty announcements (UTF-8; decisions in three forms).

List pages (15 announcements each, ``rel="next"`` pagination) lead to announcement pages:
a structured table, free prose (Chinese or English), or a one-line notice whose decision
is a GBK text attachment, which is followed and parsed. Each gives one ``penalty``.

Contracts (``scrapy check penalties``) need the site on http://127.0.0.1:8765.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.http import Response

from riskcrawl import parsers
from riskcrawl.spiders.base import RiskSpider


class PenaltiesSpider(RiskSpider):
    name = "penalties"
    record_type = "penalty"

    async def start(self):
        for url in self.start_urls:
            yield Request(url, callback=self.parse_list, errback=self.on_error)

    def parse_list(self, response: Response):
        """A list page: the page, every announcement on it, the other list pages.

        @url http://127.0.0.1:8765/regulator/penalties?page=1
        @returns items 1 1
        @returns requests 15
        @scrapes url content_hash page_kind body crawl_id
        """
        if page := self.page_item(response, "list"):
            yield page
        listing = parsers.parse_penalty_list(self.text(response), response.url)
        yield from self.follow_listing(listing, self.parse_penalty)

    def parse_penalty(self, response: Response):
        """An announcement: the page and its penalty, or the request for its attachment.

        @url http://127.0.0.1:8765/regulator/penalty/a00f7c6f237197dc.html
        @returns items 2 2
        @scrapes url fetched_at content_hash crawl_id
        @record penalty record_id institution penalty_types decision_date form
        """
        text = self.text(response)
        attachment = parsers.find_penalty_attachment(text, response.url)
        if attachment is not None:
            # followed even when this page is unchanged: the attachment has its own state
            if page := self.page_item(response, "detail"):
                yield page
            yield Request(
                attachment,
                callback=self.parse_attachment,
                errback=self.on_error,
                cb_kwargs={"page_url": response.url},
            )
            return
        yield from self.parse_detail(response, "detail", parsers.parse_penalty_detail)

    def parse_attachment(self, response: Response, page_url: str | None = None):
        """The GBK text decision of an attachment-only announcement.

        @url http://127.0.0.1:8765/regulator/files/60a17b72ea4b40c5.txt
        @cb_kwargs {"page_url": "http://127.0.0.1:8765/regulator/penalty/60a17b72ea4b40c5.html"}
        @returns items 2 2
        @scrapes url fetched_at content_hash crawl_id
        @record penalty record_id institution penalty_types decision_date form
        """
        yield from self.parse_detail(
            response, "attachment", parsers.parse_penalty_attachment, page_url
        )
