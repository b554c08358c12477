"""Word lists the seed draws from: regions, places, names, and the words of a CRM's day."""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# country -> (phone prefix, currency, email top-level domain)
COUNTRIES: dict[str, tuple[str, str, str]] = {
    "GB": ("+44", "GBP", "co.uk"), "IE": ("+353", "EUR", "ie"), "DE": ("+49", "EUR", "de"),
    "AT": ("+43", "EUR", "at"), "CH": ("+41", "CHF", "ch"), "BE": ("+32", "EUR", "be"),
    "NL": ("+31", "EUR", "nl"), "LU": ("+352", "EUR", "lu"), "FR": ("+33", "EUR", "fr"),
    "ES": ("+34", "EUR", "es"), "PT": ("+351", "EUR", "pt"), "IT": ("+39", "EUR", "it"),
    "SE": ("+46", "SEK", "se"), "NO": ("+47", "NOK", "no"), "DK": ("+45", "DKK", "dk"),
    "FI": ("+358", "EUR", "fi"), "PL": ("+48", "PLN", "pl"), "CZ": ("+420", "CZK", "cz"),
    "HU": ("+36", "HUF", "hu"), "AE": ("+971", "AED", "ae"), "SA": ("+966", "SAR", "sa"),
    "ZA": ("+27", "ZAR", "co.za"), "US": ("+1", "USD", "com"), "CA": ("+1", "CAD", "ca"),
    "MX": ("+52", "MXN", "mx"), "BR": ("+55", "BRL", "com.br"), "AR": ("+54", "ARS", "com.ar"),
    "CL": ("+56", "CLP", "cl"), "AU": ("+61", "AUD", "com.au"), "NZ": ("+64", "NZD", "co.nz"),
    "JP": ("+81", "JPY", "jp"), "KR": ("+82", "KRW", "kr"), "IN": ("+91", "INR", "in"),
    "SG": ("+65", "SGD", "sg"), "MY": ("+60", "MYR", "my"), "ID": ("+62", "IDR", "id"),
    "TH": ("+66", "THB", "th"),
}

# (id, name, region, relative size, [(country, cities)])
TERRITORIES: list[tuple[str, str, str, int, list[tuple[str, list[str]]]]] = [
    ("uk-ireland", "UK & Ireland", "EMEA", 9, [("GB", ["London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol"]), ("IE", ["Dublin", "Cork", "Galway"])]),
    ("dach", "DACH", "EMEA", 10, [("DE", ["Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Leipzig"]), ("AT", ["Wien", "Graz", "Linz"]), ("CH", ["Zürich", "Genève", "Basel", "Bern"])]),
    ("benelux", "Benelux", "EMEA", 5, [("NL", ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven"]), ("BE", ["Brussels", "Antwerp", "Ghent"]), ("LU", ["Luxembourg"])]),
    ("france", "France", "EMEA", 7, [("FR", ["Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Lille", "Bordeaux"])]),
    ("iberia", "Iberia", "EMEA", 5, [("ES", ["Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao"]), ("PT", ["Lisboa", "Porto", "Braga"])]),
    ("italy", "Italy", "EMEA", 5, [("IT", ["Milano", "Roma", "Torino", "Napoli", "Bologna", "Firenze"])]),
    ("nordics", "Nordics", "EMEA", 5, [("SE", ["Stockholm", "Göteborg", "Malmö"]), ("NO", ["Oslo", "Bergen"]), ("DK", ["København", "Aarhus"]), ("FI", ["Helsinki", "Tampere"])]),
    ("cee", "Central & Eastern Europe", "EMEA", 4, [("PL", ["Warszawa", "Kraków", "Wrocław", "Gdańsk"]), ("CZ", ["Praha", "Brno"]), ("HU", ["Budapest"])]),
    ("middle-east", "Middle East", "EMEA", 3, [("AE", ["Dubai", "Abu Dhabi"]), ("SA", ["Riyadh", "Jeddah"])]),
    ("africa", "Africa", "EMEA", 2, [("ZA", ["Johannesburg", "Cape Town", "Durban"])]),
    ("us-east", "US East", "Americas", 12, [("US", ["New York", "Boston", "Philadelphia", "Atlanta", "Miami", "Washington"])]),
    ("us-central", "US Central", "Americas", 9, [("US", ["Chicago", "Dallas", "Houston", "Minneapolis", "Denver", "Austin"])]),
    ("us-west", "US West", "Americas", 10, [("US", ["San Francisco", "Los Angeles", "Seattle", "Portland", "San Diego"])]),
    ("canada", "Canada", "Americas", 4, [("CA", ["Toronto", "Montréal", "Vancouver", "Calgary", "Ottawa"])]),
    ("mexico", "Mexico", "Americas", 3, [("MX", ["Ciudad de México", "Guadalajara", "Monterrey"])]),
    ("south-america", "South America", "Americas", 4, [("BR", ["São Paulo", "Rio de Janeiro", "Curitiba"]), ("AR", ["Buenos Aires", "Córdoba"]), ("CL", ["Santiago"])]),
    ("anz", "Australia & New Zealand", "APAC", 4, [("AU", ["Sydney", "Melbourne", "Brisbane", "Perth"]), ("NZ", ["Auckland", "Wellington"])]),
    ("japan-korea", "Japan & Korea", "APAC", 4, [("JP", ["Tokyo", "Osaka", "Yokohama", "Nagoya"]), ("KR", ["Seoul", "Busan"])]),
    ("india", "India", "APAC", 5, [("IN", ["Bengaluru", "Mumbai", "Delhi", "Hyderabad", "Pune", "Chennai"])]),
    ("southeast-asia", "Southeast Asia", "APAC", 4, [("SG", ["Singapore"]), ("MY", ["Kuala Lumpur"]), ("ID", ["Jakarta"]), ("TH", ["Bangkok"])]),
]

LEGAL_FORMS = {
    "DE": "GmbH", "AT": "GmbH", "CH": "AG", "GB": "Ltd", "IE": "Ltd", "US": "Inc.", "CA": "Inc.",
    "FR": "SAS", "BE": "NV", "NL": "B.V.", "LU": "S.A.", "ES": "S.L.", "PT": "Lda", "IT": "S.r.l.",
    "SE": "AB", "NO": "AS", "DK": "ApS", "FI": "Oy", "PL": "Sp. z o.o.", "CZ": "s.r.o.", "HU": "Kft.",
    "JP": "K.K.", "KR": "Co., Ltd.", "IN": "Pvt Ltd", "AU": "Pty Ltd", "NZ": "Ltd", "BR": "Ltda.",
    "MX": "S.A. de C.V.", "AR": "S.A.", "CL": "SpA", "ZA": "(Pty) Ltd", "AE": "LLC", "SA": "LLC",
    "SG": "Pte. Ltd.", "MY": "Sdn. Bhd.", "ID": "PT", "TH": "Co., Ltd.",
}

FIRST_NAMES = _words(
    "Ada Alan Amara Anna Aiko Ben Bianca Carlos Chen Chloé Daniel Dara Elena Emil Erik Fatima Felix Freya "
    "Gabriel Grace Hana Hugo Ines Ivan Jana Javier Jonas Julia Kai Karin Kofi Lars Laura Leila Liam Lucia "
    "Maja Marco María Mateo Mei Mia Mohammed Nadia Niamh Nikolai Noah Olga Omar Oskar Paula Pedro Priya "
    "Rafael Rania Ravi Rosa Ruth Sakura Samir Sara Sofia Stefan Tariq Thomas Tomás Valentina Victor Wei "
    "Yara Yusuf Zoe Zofia Ingrid Henrik Aoife Siobhan Kenji Min-jun Ji-woo Arjun Ananya Thabo Lerato"
)

LAST_NAMES = _words(
    "Abadi Andersen Bauer Becker Bianchi Brown Castro Chen Costa Dubois Eriksson Fischer García Gonzalez "
    "Haddad Hansen Hoffmann Ivanova Jansen Johansson Kaur Kelly Khan Kim Kowalski Larsen Laurent Lee "
    "Lindqvist López Martin Meyer Moreau Müller Murphy Nakamura Nguyen Novak Nowak O'Brien Okafor Olsen "
    "Patel Pereira Petrov Ramos Rossi Russo Sato Schmidt Schneider Silva Singh Smith Suzuki Tanaka "
    "Taylor Van Dijk Virtanen Wagner Walsh Wang Weber Williams Wilson Wójcik Yamamoto Zhang Ziegler "
    "Nkosi Dlamini Sharma Iyer Fernandes Svoboda Horváth Nagy"
)

COMPANY_WORDS = _words(
    "Brightwater Northwind Bluepeak Ironbridge Silverline Redwood Clearpath Greenfield Highgate Lakeside "
    "Oakridge Pinecrest Riverstone Stonehill Sunridge Westbrook Eastgate Goldleaf Harbor Keystone "
    "Meridian Nova Orbit Polaris Quantum Summit Terra Vertex Zenith Apex Atlas Beacon Cobalt Crescent "
    "Delta Ember Falcon Granite Horizon Juniper Kestrel Lumen Maple Nimbus Onyx Pioneer Quartz Sable "
    "Tidewater Union Vanguard Willow Aurora Boreal Cedar Dune Everest Fjord Glacier"
)

COMPANY_TRADES = _words(
    "Logistics Analytics Foods Systems Labs Consulting Retail Energy Health Media Robotics Textiles "
    "Pharma Motors Software Freight Interiors Engineering Capital Insurance Hotels Outdoor Bakery "
    "Electronics Architects Dental Print Solar Water Security"
)

TITLES = (
    "CEO", "CFO", "COO", "Head of Procurement", "Office Manager", "IT Director", "Operations Manager",
    "Purchasing Lead", "Accounts Payable", "Facilities Manager", "Head of Customer Service", "CTO",
    "Project Manager", "Finance Manager", "Marketing Lead", "Logistics Coordinator",
)

MAIL_PROVIDERS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "gmx.net", "web.de")

TAGS = (
    "vip", "newsletter", "reseller", "partner", "churn-risk", "enterprise", "smb", "trial",
    "priority-support", "gdpr", "invoice-by-post", "key-account", "referral", "event-2026", "beta",
)

TEAMS = ("support-l1", "support-l2", "billing", "onboarding")

TICKET_SUBJECTS = (
    "Invoice shows the wrong VAT rate", "Cannot log in to the customer portal", "Delivery is late",
    "Received a damaged item", "Request for a refund", "API returns errors since this morning",
    "Change of billing address", "Upgrade to the premium plan", "Password reset mail never arrives",
    "Items missing from the order", "Duplicate charge on card", "Question about contract renewal",
    "Export to CSV fails", "Need a copy of last year's invoices", "Wrong size delivered",
    "Add three more user seats", "Two-factor codes are not accepted", "Cancel a pending order",
)

TICKET_BODIES = (
    "Customer called about this twice already; please prioritise.",
    "Screenshot attached in the original mail. Happens on every attempt.",
    "Customer asks for a written confirmation once this is resolved.",
    "Started after the last update according to the customer.",
    "Affects several people on their side, not just one account.",
    "Customer is fine with a call back tomorrow morning.",
)

# The first answer to a ticket: what an agent writes back to the customer.
TICKET_REPLIES = (
    "Thanks for reporting this. We are looking into it and will update you today.",
    "We have reproduced the problem and passed it to the team that owns it.",
    "Could you send us the order number and a screenshot of the message you see?",
    "This is fixed on our side now; please try again and let us know.",
    "We have corrected it and sent you an updated document.",
)

DEAL_TITLES = (
    "{year} renewal", "Expansion: {n} more seats", "Pilot project", "Premium support upsell",
    "New site rollout", "Multi-year agreement", "Hardware refresh", "Onboarding package",
)

ACTIVITY_SUBJECTS = {
    "note": ("Account review", "Notes from the quarterly review", "Customer feedback", "Internal handover"),
    "call": ("Follow-up call", "Intro call", "Check-in call", "Call about the open invoice"),
    "email": ("Sent the proposal", "Quote follow-up", "Shared onboarding guide", "Answered pricing question"),
    "visit": ("On-site visit", "Workshop at their office", "Lunch with the buyer", "Site survey"),
}

ACTIVITY_BODIES = (
    "Discussed next quarter's volume; they expect growth of about 10%.",
    "They want to consolidate suppliers this year; we are on the short list.",
    "Agreed to send an updated quote by Friday.",
    "Main contact is on leave until the end of the month.",
    "Happy with the service overall; asked about faster delivery options.",
    "Raised concerns about the price increase; offered a loyalty discount.",
)

LOST_REASONS = (
    "Chose a competitor on price", "No budget this year", "Project cancelled on their side",
    "Went with the incumbent supplier", "Never reached the decision maker", "Timing: revisit next year",
)

ORDER_REQUEST_REASONS = {
    "cancel_request": ("Ordered twice by mistake", "Customer found a cheaper offer", "No longer needed",
                       "Wrong items ordered"),
    "refund_request": ("Arrived damaged", "Not as described", "Items missing from the delivery",
                       "Delivered too late to be of use"),
}

# Follow-ups, by what they are about: a ticket, a deal, or the customer as such.
TASK_TITLES = {
    "ticket": ("Call back about the ticket", "Check the fix works for them", "Confirm the refund arrived",
               "Chase the courier for an update", "Send the written confirmation"),
    "deal": ("Send the revised quote", "Book a demo with the buyer", "Follow up on the proposal",
             "Get the signed contract back", "Check budget approval"),
    "customer": ("Quarterly check-in call", "Send the onboarding guide", "Ask for a reference",
                 "Review their open invoices", "Plan the next site visit"),
}

TASK_NOTES = (
    "They prefer a call before noon.",
    "Mention the loyalty discount we agreed on.",
    "Main contact is back from leave on Monday.",
    "Bring the updated price list.",
)
