"""A reader's journey through a client generated from /openapi.json by
openapi-python-client: register, sign in, read, list, gift, and an admin creating an
account. Type-checked with mypy --strict before it runs, so a schema that types a field
wrongly fails here as it would in a publisher's code."""

import sys

from paywall_client import AuthenticatedClient, Client
from paywall_client.api.admin_accounts import (
    admin_accounts_create,
    admin_accounts_put_subscription,
)
from paywall_client.api.admin_articles import admin_articles_create
from paywall_client.api.articles import articles_create_gift, articles_list, articles_read
from paywall_client.api.auth import auth_login, auth_register
from paywall_client.models import (
    AccessLevel,
    AccountView,
    ArticleInput,
    ArticleStatus,
    ArticleView,
    CreateAccountBody,
    CreatedAccountView,
    GiftView,
    LoginBody,
    PageArticleSummary,
    Problem,
    ProblemCode,
    RegisterBody,
    ResetLinkView,
    SubscriptionBody,
    TokenPair,
)
from paywall_client.types import UNSET


def signed_in(base: str, email: str, password: str) -> tuple[AuthenticatedClient, TokenPair]:
    pair = auth_login.sync(client=Client(base_url=base), body=LoginBody(email=email, password=password))
    assert isinstance(pair, TokenPair), pair
    return AuthenticatedClient(base_url=base, token=pair.access_token), pair


def main(base: str, admin_email: str, admin_password: str) -> None:
    anonymous = Client(base_url=base)
    admin, _ = signed_in(base, admin_email, admin_password)

    body = "\n\n".join(f"Paragraph {i}: the night trains are back." for i in range(8))
    created = admin_articles_create.sync(
        client=admin,
        body=ArticleInput(
            title="The night trains are back",
            body=body,
            section="transport",
            access=AccessLevel.SUBSCRIBERS,
            status=ArticleStatus.PUBLISHED,
            slug="night-trains",
        ),
    )
    assert not isinstance(created, Problem) and created is not None, created

    account = auth_register.sync(
        client=anonymous,
        body=RegisterBody(email="journey@example.org", password="journey-passphrase-Satie-1866"),
    )
    assert isinstance(account, AccountView), account
    reader, pair = signed_in(base, "journey@example.org", "journey-passphrase-Satie-1866")
    assert pair.account.id == account.id

    # Public reads take either client: anonymous gets the teaser, and so does the
    # signed-in reader without a subscription.
    teaser = articles_read.sync(slug="night-trains", client=anonymous)
    assert isinstance(teaser, ArticleView), teaser
    assert teaser.truncated and teaser.paywall is not None
    assert teaser.paywall.message.startswith("You have ")
    as_reader = articles_read.sync(slug="night-trains", client=reader)
    assert isinstance(as_reader, ArticleView) and as_reader.truncated

    page = articles_list.sync(client=anonymous, limit=10)
    assert isinstance(page, PageArticleSummary), page
    assert [a.slug for a in page.items] == ["night-trains"]
    assert page.next_cursor is None

    # A reader may not gift; a subscriber may.
    refused = articles_create_gift.sync(slug="night-trains", client=reader)
    assert isinstance(refused, Problem) and refused.code == ProblemCode.FORBIDDEN, refused
    subscribed = admin_accounts_put_subscription.sync(
        id=account.id,
        client=admin,
        body=SubscriptionBody(plan="digital", expires_at=None),
    )
    assert isinstance(subscribed, AccountView), subscribed
    full = articles_read.sync(slug="night-trains", client=reader)
    assert isinstance(full, ArticleView) and not full.truncated and full.paywall is None
    gift = articles_create_gift.sync(slug="night-trains", client=reader)
    assert isinstance(gift, GiftView), gift
    assert gift.article == "night-trains"
    opened = articles_read.sync(slug="night-trains", client=anonymous, gift=gift.token)
    assert isinstance(opened, ArticleView) and not opened.truncated

    # An admin creates an account without a password: it comes with a reset link.
    made = admin_accounts_create.sync(
        client=admin,
        body=CreateAccountBody(email="made@example.org", display_name="Made", password=UNSET),
    )
    assert isinstance(made, CreatedAccountView), made
    assert isinstance(made.password_reset, ResetLinkView) and made.password_reset.url
    print("journey: 9 steps passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
