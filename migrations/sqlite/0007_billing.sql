-- Plans, and what Stripe has told about payments for them.

-- What a subscription is to. `seats`: devices that may read at once (0: unlimited).
-- `active` is 1 while the plan is on sale (listed, bought at checkout).
CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    seats BIGINT NOT NULL,
    checkout_url TEXT,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The Stripe prices that buy a plan. A price buys one plan at most; a subscription
-- to a price not listed here is another product's and makes no subscriber.
CREATE TABLE plan_prices (
    price_id TEXT PRIMARY KEY,
    plan_id TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    position BIGINT NOT NULL
);

CREATE INDEX plan_prices_plan ON plan_prices (plan_id, position);

-- Where an account's subscription comes from (`admin`, `stripe`, `import`) and, for
-- Stripe's, its status. NULL on subscriptions granted before payments existed (admin).
ALTER TABLE accounts ADD COLUMN subscription_source TEXT;
ALTER TABLE accounts ADD COLUMN subscription_status TEXT;

-- The Stripe customer a checkout linked to an account (its `client_reference_id`).
CREATE TABLE stripe_customers (
    customer_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    linked_at BIGINT NOT NULL
);

CREATE INDEX stripe_customers_account ON stripe_customers (account_id);

-- Each Stripe subscription to a plan's price, as its newest applied event left it,
-- whether or not its customer is linked yet (it counts once the link arrives).
-- `event_created`, `event_rank` and `event_id` order events: an older one is passed over.
-- `status` is Stripe's, or `deleted`, which is final.
CREATE TABLE stripe_subscriptions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    status TEXT NOT NULL,
    period_end BIGINT,
    started_at BIGINT,
    ended_at BIGINT,
    event_created BIGINT NOT NULL,
    event_rank BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX stripe_subscriptions_customer ON stripe_subscriptions (customer_id);

-- Every Stripe event id received with a valid signature, written in the transaction of
-- the change it made: a repeat finds its id and changes nothing.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX stripe_events_received ON stripe_events (received_at);
