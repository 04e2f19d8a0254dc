"""The catalog's pages (included at the root by registry/urls.py as an optional app).

    /                                   home
    /tickets/                           catalog (q, task, arch, dmin, dmax, status, verified, sort, page)
    /tickets/<name>/                    ticket page (?revision=<commit> for an older revision)
    /tickets/<name>/progress.json       live verification progress (polled by the page)
    /tickets/<name>/curves/<id>.svg     accuracy curves of one verification (.vl.json: its Vega-Lite chart)
    /tasks/                             tasks
    /tasks/<name>/                      leaderboard;  /tasks/<name>/frontier.vl.json its chart (Vega-Lite),
                                        /tasks/<name>/frontier.svg the same as an image (?size=narrow)
    /signup/ /login/ /logout/           accounts;  /me/tickets/ /me/tokens/ for the signed-in user
    /submit/                            how to submit
"""

from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from registry.catalog import views

app_name = "catalog"

NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"

urlpatterns = [
    path("", views.home, name="home"),
    path("tickets/", views.catalog, name="catalog"),
    re_path(rf"^tickets/{NAME}/$", views.ticket_detail, name="ticket"),
    re_path(rf"^tickets/{NAME}/progress\.json$", views.ticket_progress, name="progress"),
    re_path(rf"^tickets/{NAME}/curves/(?P<verification_id>[0-9]+)\.svg$", views.curves_plot, name="curves"),
    re_path(rf"^tickets/{NAME}/curves/(?P<verification_id>[0-9]+)\.vl\.json$", views.curves_chart,
            name="curves-chart"),
    path("tasks/", views.task_list, name="tasks"),
    re_path(r"^tasks/(?P<name>[A-Za-z0-9._-]+)/$", views.leaderboard, name="leaderboard"),
    re_path(r"^tasks/(?P<name>[A-Za-z0-9._-]+)/frontier\.svg$", views.frontier_plot, name="frontier"),
    re_path(r"^tasks/(?P<name>[A-Za-z0-9._-]+)/frontier\.vl\.json$", views.frontier_chart, name="frontier-chart"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(template_name="catalog/login.html",
                                                redirect_authenticated_user=True,
                                                next_page="catalog:my-tickets"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="catalog:home"), name="logout"),
    path("me/tickets/", views.my_tickets, name="my-tickets"),
    path("me/tokens/", views.tokens, name="tokens"),
    path("me/tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke-token"),
    path("submit/", views.how_to_submit, name="submit"),
]
