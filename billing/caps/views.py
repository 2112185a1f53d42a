"""The user's billing API: the weekly cap (an estimate) and past weekly reports."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.caps.delivery import cap_report_json
from billing.caps.live import cap_live
from billing.models import CapReport
from mk0r.schema import error_responses


class CapView(APIView):
    """GET /api/billing/cap: this week so far, its projection, the estimate and its calibration."""

    @extend_schema(
        summary="This week's cap burn so far and its projection (flat-rate plans; an estimate)",
        tags=["billing"],
        responses={200: OpenApiTypes.OBJECT, **error_responses({404: ("no_weekly_cap",)})},
    )
    def get(self, request):
        return Response(cap_live(user=request.user))


class ReportPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "pageSize"
    max_page_size = 100


class ReportListView(APIView):
    """GET /api/billing/reports: past weekly reports, newest first."""

    @extend_schema(summary="Past weekly cap reports, newest first (flat-rate plans; estimates)", tags=["billing"])
    def get(self, request):
        paginator = ReportPagination()
        reports = CapReport.objects.filter(user=request.user).order_by("-week")
        page = paginator.paginate_queryset(reports, request, view=self)
        return paginator.get_paginated_response([cap_report_json(r) for r in page])
