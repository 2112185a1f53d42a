"""The API's JSON parser: DRF's, with a body nested too deeply for Python's parser refused as
400 `invalid_request` instead of failing the request with a RecursionError (a 500)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JSONBodyParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
