from django.urls import path

from registry.tickets import api

urlpatterns = [
    path("tasks/", api.TaskListApi.as_view(), name="task-list"),
    path("tasks/<slug:task>/", api.TaskDetailApi.as_view(), name="task-detail"),
    path("tickets/", api.TicketListSubmitApi.as_view(), name="ticket-list"),
    path("tickets/<str:name>/", api.TicketDetailApi.as_view(), name="ticket-detail"),
    path("tickets/<str:name>/withdraw/", api.TicketWithdrawApi.as_view(), name="ticket-withdraw"),
    path("tickets/<str:name>/revisions/", api.RevisionListApi.as_view(), name="ticket-revisions"),
    path("tickets/<str:name>/revisions/<str:rev>/", api.RevisionDetailApi.as_view(), name="ticket-revision"),
    path(
        "tickets/<str:name>/revisions/<str:rev>/verification/",
        api.VerificationApi.as_view(),
        name="ticket-verification",
    ),
    path("tickets/<str:name>/revisions/<str:rev>/files/<path:path>", api.FileDownloadApi.as_view(), name="ticket-file"),
]
