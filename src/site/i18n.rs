//! The pages' words in each language, from one catalogue per language: a page names
//! a message, never spells it. The paywall's own sentence comes from
//! `paywall::Reason::message`, like the API's.

use crate::domain::Language;

/// Every sentence and label the pages show.
pub struct Texts {
    pub lang: &'static str,
    pub site_name: &'static str,
    pub front_title: &'static str,
    pub read_also: &'static str,
    pub subscribers_label: &'static str,
    pub registered_label: &'static str,
    pub metered_label: &'static str,
    pub free_label: &'static str,
    pub by: &'static str,
    pub published: &'static str,
    pub updated: &'static str,
    pub minutes_read: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub register: &'static str,
    pub subscribe: &'static str,
    pub account: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub display_name: &'static str,
    pub optional: &'static str,
    pub sign_in_title: &'static str,
    pub register_title: &'static str,
    pub no_account_yet: &'static str,
    pub have_account: &'static str,
    pub forgot_password: &'static str,
    pub wrong_credentials: &'static str,
    pub suspended: &'static str,
    pub too_many: &'static str,
    pub registration_closed: &'static str,
    pub email_taken: &'static str,
    pub form_expired: &'static str,
    pub already_subscriber: &'static str,
    pub paywall_sign_in: &'static str,
    pub paywall_subscribe: &'static str,
    pub paywall_register: &'static str,
    pub meter_left: &'static str,
    pub meter_left_one: &'static str,
    pub meter_last: &'static str,
    pub meter_none: &'static str,
    pub older: &'static str,
    pub no_articles: &'static str,
    pub not_found_title: &'static str,
    pub not_found_text: &'static str,
    pub error_title: &'static str,
    pub error_text: &'static str,
    pub back_home: &'static str,
    pub main_navigation: &'static str,
    pub skip_to_content: &'static str,
    pub reset_title: &'static str,
    pub reset_intro: &'static str,
    pub reset_send: &'static str,
    pub reset_sent: &'static str,
    pub reset_invalid: &'static str,
    pub new_password_title: &'static str,
    pub new_password: &'static str,
    pub new_password_save: &'static str,
    pub password_changed: &'static str,
    pub subscribe_title: &'static str,
    pub no_plans: &'static str,
    pub choose_plan: &'static str,
    pub sign_in_to_subscribe: &'static str,
    pub one_device: &'static str,
    pub devices: &'static str,
    pub any_devices: &'static str,
    pub profile: &'static str,
    pub subscription: &'static str,
    pub no_subscription: &'static str,
    pub subscribed_until: &'static str,
    pub subscription_ended: &'static str,
    pub subscribed_forever: &'static str,
    pub manage_billing: &'static str,
    pub sessions: &'static str,
    pub this_device: &'static str,
    pub signed_in_since: &'static str,
    pub sign_out_everywhere: &'static str,
    pub signed_out_everywhere: &'static str,
    pub gift_button: &'static str,
    pub gift_title: &'static str,
    pub gift_text: &'static str,
    pub gift_limit: &'static str,
    pub gifts_made: &'static str,
    pub until: &'static str,
    pub continue_here: &'static str,
    pub seats_one: &'static str,
    pub seats_many: (&'static str, &'static str),
    pub reading_now: &'static str,
}

static EN: Texts = Texts {
    lang: "en",
    site_name: "The Daily Paywall",
    front_title: "Latest news",
    read_also: "Read also",
    subscribers_label: "Article reserved for our subscribers",
    registered_label: "Free for registered readers",
    metered_label: "Part of your free articles",
    free_label: "Free to read",
    by: "By",
    published: "Published",
    updated: "Updated",
    minutes_read: "min read",
    sign_in: "Sign in",
    sign_out: "Sign out",
    register: "Create an account",
    subscribe: "Subscribe",
    account: "My account",
    email: "Email",
    password: "Password",
    display_name: "Name",
    optional: "optional",
    sign_in_title: "Sign in to your account",
    register_title: "Create your free account",
    no_account_yet: "No account yet?",
    have_account: "Already have an account?",
    forgot_password: "Forgot your password?",
    wrong_credentials: "The email or password is not correct.",
    suspended: "This account is suspended. Contact the newsroom.",
    too_many: "Too many attempts. Try again in a few minutes.",
    registration_closed: "Registration is closed on this site.",
    email_taken: "An account with this email already exists. Sign in instead.",
    form_expired: "This form has expired. Please send it again.",
    already_subscriber: "Already a subscriber?",
    paywall_sign_in: "Sign in",
    paywall_subscribe: "Subscribe to read on",
    paywall_register: "Create a free account to read on",
    meter_left: "free articles left this month",
    meter_left_one: "1 free article left this month",
    meter_last: "This was your last free article this month.",
    meter_none: "You have read all your free articles this month.",
    older: "Older articles",
    no_articles: "No articles here yet.",
    not_found_title: "Page not found",
    not_found_text:
        "There is nothing at this address. The article may have moved or been unpublished.",
    error_title: "Something went wrong",
    error_text: "This page could not be shown. Please try again in a moment.",
    back_home: "Back to the front page",
    main_navigation: "Main navigation",
    skip_to_content: "Skip to content",
    reset_title: "Reset your password",
    reset_intro: "Enter your email and we will send you a link to choose a new password.",
    reset_send: "Send the link",
    reset_sent: "If an account has this email, a link is on its way. It works for one hour.",
    reset_invalid: "This link is not valid any more: it was used, has expired, or a newer one was sent. Ask for a new one below.",
    new_password_title: "Choose a new password",
    new_password: "New password",
    new_password_save: "Save the password",
    password_changed: "Your password is changed and you are signed out everywhere. Sign in with the new one.",
    subscribe_title: "Subscribe",
    no_plans: "No subscription is on sale at the moment.",
    choose_plan: "Choose this plan",
    sign_in_to_subscribe: "Sign in to subscribe",
    one_device: "Read on one device at a time",
    devices: "devices at a time",
    any_devices: "Read on as many devices as you like",
    profile: "Profile",
    subscription: "Subscription",
    no_subscription: "You have no subscription.",
    subscribed_until: "reads until",
    subscription_ended: "ended on",
    subscribed_forever: "without end",
    manage_billing: "Manage billing and invoices",
    sessions: "Signed-in devices",
    this_device: "this device",
    signed_in_since: "signed in on",
    sign_out_everywhere: "Sign out everywhere",
    signed_out_everywhere: "You are signed out on every device, this one included.",
    gift_button: "Gift this article",
    gift_title: "Your gift link",
    gift_text: "Anyone with this link can read the whole article until",
    gift_limit: "You have used all your gift links this month.",
    gifts_made: "Gift links you made",
    until: "until",
    continue_here: "Continue reading here",
    seats_one: "Your subscription reads on one device at a time: continuing here stops the reading on the other device, which stays signed in.",
    seats_many: (
        "Your subscription reads on",
        "devices at a time: continuing here stops the reading on the device that has read longest, which stays signed in.",
    ),
    reading_now: "reading now",
};

static FR: Texts = Texts {
    lang: "fr",
    site_name: "Le Quotidien Paywall",
    front_title: "À la une",
    read_also: "Lire aussi",
    subscribers_label: "Article réservé à nos abonnés",
    registered_label: "Gratuit pour les lecteurs inscrits",
    metered_label: "Compte dans vos articles gratuits",
    free_label: "En accès libre",
    by: "Par",
    published: "Publié le",
    updated: "Mis à jour le",
    minutes_read: "min de lecture",
    sign_in: "Se connecter",
    sign_out: "Se déconnecter",
    register: "Créer un compte",
    subscribe: "S’abonner",
    account: "Mon compte",
    email: "Adresse e-mail",
    password: "Mot de passe",
    display_name: "Nom",
    optional: "facultatif",
    sign_in_title: "Connectez-vous à votre compte",
    register_title: "Créez votre compte gratuit",
    no_account_yet: "Pas encore de compte ?",
    have_account: "Déjà un compte ?",
    forgot_password: "Mot de passe oublié ?",
    wrong_credentials: "L’adresse e-mail ou le mot de passe est incorrect.",
    suspended: "Ce compte est suspendu. Contactez la rédaction.",
    too_many: "Trop de tentatives. Réessayez dans quelques minutes.",
    registration_closed: "Les inscriptions sont fermées sur ce site.",
    email_taken: "Un compte existe déjà avec cette adresse. Connectez-vous.",
    form_expired: "Ce formulaire a expiré. Merci de l’envoyer à nouveau.",
    already_subscriber: "Déjà abonné ?",
    paywall_sign_in: "Se connecter",
    paywall_subscribe: "S’abonner pour lire la suite",
    paywall_register: "Créer un compte gratuit pour lire la suite",
    meter_left: "articles gratuits restants ce mois-ci",
    meter_left_one: "1 article gratuit restant ce mois-ci",
    meter_last: "C’était votre dernier article gratuit ce mois-ci.",
    meter_none: "Vous avez lu tous vos articles gratuits ce mois-ci.",
    older: "Articles précédents",
    no_articles: "Aucun article pour le moment.",
    not_found_title: "Page introuvable",
    not_found_text: "Il n’y a rien à cette adresse. L’article a peut-être été déplacé ou dépublié.",
    error_title: "Une erreur est survenue",
    error_text: "Cette page n’a pas pu être affichée. Réessayez dans un instant.",
    back_home: "Retour à la une",
    main_navigation: "Navigation principale",
    skip_to_content: "Aller au contenu",
    reset_title: "Réinitialiser votre mot de passe",
    reset_intro: "Indiquez votre adresse e-mail : nous vous enverrons un lien pour choisir un nouveau mot de passe.",
    reset_send: "Envoyer le lien",
    reset_sent: "Si un compte existe avec cette adresse, un lien est en route. Il est valable une heure.",
    reset_invalid: "Ce lien n’est plus valable : il a servi, a expiré, ou un lien plus récent a été envoyé. Demandez-en un nouveau ci-dessous.",
    new_password_title: "Choisissez un nouveau mot de passe",
    new_password: "Nouveau mot de passe",
    new_password_save: "Enregistrer le mot de passe",
    password_changed: "Votre mot de passe est changé et vous êtes déconnecté partout. Connectez-vous avec le nouveau.",
    subscribe_title: "S’abonner",
    no_plans: "Aucune offre d’abonnement pour le moment.",
    choose_plan: "Choisir cette offre",
    sign_in_to_subscribe: "Se connecter pour s’abonner",
    one_device: "Lecture sur un appareil à la fois",
    devices: "appareils à la fois",
    any_devices: "Lecture sur autant d’appareils que vous voulez",
    profile: "Profil",
    subscription: "Abonnement",
    no_subscription: "Vous n’avez pas d’abonnement.",
    subscribed_until: "lecture jusqu’au",
    subscription_ended: "terminé le",
    subscribed_forever: "sans fin",
    manage_billing: "Gérer la facturation",
    sessions: "Appareils connectés",
    this_device: "cet appareil",
    signed_in_since: "connecté le",
    sign_out_everywhere: "Se déconnecter partout",
    signed_out_everywhere: "Vous êtes déconnecté sur tous vos appareils, celui-ci compris.",
    gift_button: "Offrir cet article",
    gift_title: "Votre lien cadeau",
    gift_text: "Toute personne qui a ce lien peut lire l’article en entier jusqu’au",
    gift_limit: "Vous avez utilisé tous vos liens cadeaux ce mois-ci.",
    gifts_made: "Liens cadeaux offerts",
    until: "jusqu’au",
    continue_here: "Continuer à lire ici",
    seats_one: "Votre abonnement se lit sur un seul appareil à la fois : continuer ici arrête la lecture sur l’autre appareil, qui reste connecté.",
    seats_many: (
        "Votre abonnement se lit sur",
        "appareils à la fois : continuer ici arrête la lecture sur l’appareil qui lit depuis le plus longtemps, qui reste connecté.",
    ),
    reading_now: "en cours de lecture",
};

pub fn texts(language: Language) -> &'static Texts {
    match language {
        Language::En => &EN,
        Language::Fr => &FR,
    }
}

/// The language a reader's `Accept-Language` prefers among those the pages speak
/// (by quality, then order), else `fallback`.
pub fn choose(accept_language: Option<&str>, fallback: Language) -> Language {
    let Some(header) = accept_language else {
        return fallback;
    };
    let mut best: Option<(f32, usize, Language)> = None;
    for (position, item) in header.split(',').enumerate() {
        let mut parts = item.trim().split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Some(language) = Language::parse(primary) else {
            continue;
        };
        if quality <= 0.0 || !(0.0..=1.0).contains(&quality) {
            continue;
        }
        let better = match best {
            None => true,
            Some((q, p, _)) => quality > q || (quality == q && position < p),
        };
        if better {
            best = Some((quality, position, language));
        }
    }
    best.map_or(fallback, |(_, _, language)| language)
}

/// A date as each language writes it (UTC): "3 December 2026", "3 décembre 2026".
pub fn date(at: i64, language: Language) -> String {
    let Ok(when) = time::OffsetDateTime::from_unix_timestamp(at) else {
        return String::new();
    };
    const EN_MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const FR_MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let month = usize::from(u8::from(when.month())) - 1;
    let months = match language {
        Language::En => &EN_MONTHS,
        Language::Fr => &FR_MONTHS,
    };
    format!("{} {} {}", when.day(), months[month], when.year())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_spoken_language_wins() {
        use Language::*;
        assert_eq!(choose(None, Fr), Fr);
        assert_eq!(choose(Some("fr-FR,fr;q=0.9,en;q=0.8"), En), Fr);
        assert_eq!(choose(Some("de-DE, en;q=0.5, fr;q=0.7"), En), Fr);
        assert_eq!(choose(Some("en-GB,en"), Fr), En);
        assert_eq!(choose(Some("de, it"), Fr), Fr);
        assert_eq!(choose(Some("fr;q=0, en;q=0.1"), Fr), En);
        assert_eq!(choose(Some("fr;q=abc"), En), Fr);
        assert_eq!(choose(Some(""), En), En);
    }

    #[test]
    fn dates_in_each_language() {
        assert_eq!(date(1_796_169_600, Language::En), "2 December 2026");
        assert_eq!(date(1_796_169_600, Language::Fr), "2 décembre 2026");
    }
}
