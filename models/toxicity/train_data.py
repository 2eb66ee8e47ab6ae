"""The training set, generated: templates and word lists written for this
project (no third-party data), filled in with a fixed seed, plus spelling
games applied to a share of the lines. data/eval.tsv is never read here;
train.py checks that no generated line equals an evaluation line.

Labels: insult (insults and harassment), threat, self_harm (telling someone
to hurt or kill themselves), sexual (sexual content and advances), hate
(attacks on people for what group they belong to). Swearing at nobody is not
a label: "fuck, the build broke" is clean."""

import random

LABELS = ["insult", "threat", "self_harm", "sexual", "hate"]

YOU = ["you", "u", "ya", "you guys", "this guy", "she", "he", "op", "that mod", "you lot"]
YOU_ARE = ["you're", "you are", "ur", "youre", "u r", "you're such", "you are such", "what a", "you're a", "you are a",
           "honestly you're a", "lol you're a", "such a"]
INSULT_ADJ = ["stupid", "dumb", "pathetic", "worthless", "useless", "ugly", "disgusting", "brainless", "clueless",
              "braindead", "fat", "retarded", "moronic", "idiotic", "spineless", "miserable", "smelly", "annoying",
              "insufferable", "fucking", "goddamn", "absolute", "sad", "lame", "trashy", "repulsive", "dense"]
INSULT_NOUN = ["idiot", "moron", "loser", "clown", "bitch", "asshole", "dickhead", "cunt", "twat", "prick",
               "jerk", "dumbass", "retard", "imbecile", "cretin", "fool", "freak", "creep", "scumbag", "bastard",
               "piece of shit", "waste of space", "nobody", "troll", "simp", "incel", "wanker", "tosser", "pillock",
               "numpty", "donkey", "pig", "rat", "snake", "weirdo", "degenerate", "failure", "joke", "shithead",
               "douchebag", "dipshit", "nitwit", "buffoon", "muppet"]
INSULT_STANDALONE = [
    "shut up", "shut your mouth", "shut the hell up", "stfu", "gtfo", "fuck off", "piss off", "fuck you",
    "screw you", "go away nobody likes you", "nobody asked", "who asked", "cry about it", "cope harder",
    "get a life", "get a brain", "you make me sick", "no one can stand you", "everyone hates you",
    "your opinion is trash", "your content is garbage and so are you", "learn to think before you type",
    "imagine being this dumb", "how are you this stupid", "you have the iq of a potato",
    "your mother must be so ashamed", "go back under your bridge", "you're a disgrace", "ratio + you're ugly",
    "L + ratio + nobody cares", "you can't even spell, idiot", "are you brain damaged", "kiss my ass",
    "bite me", "eat a dick", "suck it loser", "you're pathetic and you know it", "die mad about it loser",
    "get rekt noob", "you're trash at this game and in life", "uninstall and touch grass",
    "you're nothing but a failure", "grow a spine", "you disgust me", "I'll make sure everyone knows what a fraud you are",
    "I'm going to spam your inbox until you quit", "I'll post your messages everywhere so they laugh at you",
    "keep crying, nobody will ever take you seriously", "you ruin every conversation you join",
]
INSULT_TAIL = ["", "", "", "", " lol", " lmao", " smh", "!!", ".", " 🙄", " 🤡", " honestly", " tbh", " fr"]

THREAT_VERB = ["kill", "hurt", "stab", "shoot", "strangle", "beat", "murder", "end", "choke", "smash", "destroy",
               "gut", "break", "cut", "punch", "wreck", "torture", "bury", "drown", "behead"]
THREAT_OBJ = ["you", "u", "your family", "your wife", "your kids", "your dog", "your mum", "your whole family",
              "everyone you love"]
THREAT_TIME = ["tonight", "tomorrow", "this weekend", "after school", "after work", "next time I see you",
               "when you least expect it", "soon", "on monday", "at the meetup", "when you get home", ""]
THREAT_TEMPLATES = [
    "I'm going to {v} {o} {t}", "i will {v} {o} {t}", "I'll {v} {o}", "gonna {v} {o} {t}",
    "I swear I'll {v} {o}", "I'm gonna {v} {o} {t}", "we will {v} {o} {t}", "someone is going to {v} {o} {t}",
    "try that again and I'll {v} {o}", "say that to my face and I'll {v} {o}",
    "I know where you live", "I know where you work", "I know where your kids go to school",
    "I found your address", "I have your home address now", "I know which gym you go to",
    "I've been watching your house", "I followed you home yesterday", "I'll be waiting outside your work {t}",
    "see you {t}, I know your address", "you'll find out what happens {t}", "better watch yourself {t}",
    "you won't see it coming", "you should be afraid", "you're going to regret this", "you'll pay for this",
    "you're going to disappear", "nobody will find the body", "I'll put you in the hospital",
    "I'll put you in the ground", "I'll make you suffer", "I'll break your legs", "I'll break your jaw",
    "I'll snap your neck", "I'll cave your skull in", "I'll rip your head off", "I'll set your car on fire",
    "I'll burn your place down", "I'm coming for you", "I'm coming for your family", "you're a dead man",
    "you're dead meat", "you are so dead", "you won't make it home", "expect a visit {t}",
    "I've got a knife with your name on it", "I bought a gun, guess who it's for", "I hope someone shoots you",
    "someone should stab you", "someone needs to beat you to death", "I hope you get hit by a car",
    "I hope your house burns down with you inside", "I hope your kids get hurt", "you'd better hide",
    "run while you can", "this is your last warning", "last warning before I come over there",
    "I'm outside your house right now", "be careful walking alone {t}", "I will end your life",
    "I'll hunt you down", "I'm going to find you", "I'll find out where you live", "it's not a threat it's a promise",
]

SELF_HARM_TEMPLATES = [
    "kill yourself", "go kill yourself", "just kill yourself", "pls kill yourself", "kill yourself now",
    "kill urself", "kill your self", "kys", "go kys", "kys loser", "kys lol", "just kys", "kys now",
    "hang yourself", "go hang yourself", "hang urself", "go jump off a cliff", "jump off a building",
    "jump off the roof", "go jump in front of a train", "walk into traffic", "step in front of a bus",
    "drink bleach", "go drink some bleach", "drink bleach and die", "eat a bullet", "shoot yourself",
    "put a gun to your head", "slit your wrists", "cut yourself", "go cut yourself", "cut deeper",
    "overdose already", "take all your pills", "swallow the pills", "stop breathing", "end yourself",
    "end your life", "end it all", "just end it", "off yourself", "unalive yourself", "unalive urself",
    "go unalive", "rope", "rope yourself", "neck yourself", "an hero already", "go die", "die already",
    "just die", "please die", "die in a fire", "nobody would care if you died", "no one will miss you",
    "the world is better without you", "everyone would be happier if you were dead",
    "you should not exist", "you shouldn't be alive", "you don't deserve to breathe",
    "you're better off dead", "do the world a favour and die", "do us a favor and kill yourself",
    "why are you still alive", "why haven't you killed yourself yet", "starve yourself, fatty",
    "stop eating until you disappear", "if I were you I'd end it", "your family would be relieved if you died",
    "you're a burden, end it", "disappear forever, permanently", "go die somewhere",
]

SEXUAL_TEMPLATES = [
    "send nudes", "send me nudes", "send pics", "send me a pic of your {b}", "show me your {b}",
    "show your {b}", "I want to see your {b}", "let me see those {b}", "flash your {b} on stream",
    "I want to fuck you", "wanna fuck?", "let's fuck", "I want to have sex with you", "wanna have sex",
    "let's have sex tonight", "I'd fuck you", "I'd smash", "I want to ride you", "ride me",
    "suck my cock", "suck my dick", "suck me off", "blow me", "give me head", "lick my balls",
    "I want to lick your {b}", "I want to grab your {b}", "I'm grabbing your {b}", "nice {b}",
    "your {b} look amazing", "big {b} lol", "I'm rock hard", "I'm so horny", "horny for you",
    "so horny rn", "dm me if you're horny", "I'm jerking off", "jerking off to your pics",
    "I came thinking of you", "I want to cum on you", "cum for me", "moan for me", "strip for me",
    "take it all off", "get naked", "get naked on cam", "show me on cam", "wanna sext", "sexting?",
    "wanna cyber", "let's do dirty things", "I'll make you scream in bed", "bend over for me",
    "sit on my lap", "spread your legs", "want to taste you", "69?", "wanna see my cock",
    "I'll send you a dick pic", "check out my dick", "my dick is huge", "your pussy", "I'm wet for you",
    "fuck me harder", "onlyfans link in bio for the uncensored vids", "porn link dm me", "xxx vids free dm",
    "I want to tie you up and fuck you", "spank me", "be my sugar baby, pics first",
]
BODY = ["tits", "boobs", "ass", "butt", "pussy", "dick", "cock", "nipples", "thighs", "body", "chest", "booty",
        "titties", "rack"]

GROUPS = ["muslims", "jews", "black people", "blacks", "gays", "gay people", "lesbians", "trans people",
          "immigrants", "refugees", "mexicans", "arabs", "asians", "chinese people", "indians", "pakistanis",
          "africans", "women", "gypsies", "roma", "disabled people", "autistic people", "christians", "hindus",
          "migrants", "latinos", "polish people", "queers", "catholics", "sikhs"]
HATE_PRED = ["are animals", "are vermin", "are subhuman", "are parasites", "are a disease", "are filth",
             "are all criminals", "are all terrorists", "are all rapists", "are inferior", "should be exterminated",
             "should be gassed", "should be deported", "should be sterilized", "should be shot", "should burn",
             "should be banned from existing", "should go back where they came from", "ruin everything",
             "are destroying our country", "are not human", "are cockroaches", "are disgusting", "are a plague",
             "don't deserve rights", "should be put in camps", "need to be wiped out", "are born evil",
             "are too stupid to think", "breed like rats", "are scum", "should be hanged", "are a cancer"]
HATE_TEMPLATES = [
    "{g} {p}", "all {g} {p}", "honestly {g} {p}", "every single one of those {g} {p}", "fact: {g} {p}",
    "i hate {g}", "I hate all {g}", "death to {g}", "kill all {g}", "no {g} allowed", "{g} out",
    "get these {g} out of our country", "{g} shouldn't be allowed here", "keep {g} out of our neighbourhood",
    "we need to get rid of the {g}", "gas the {g}", "ban all {g}", "{g} have no place in society",
]
SLURS = ["nigger", "nigga", "faggot", "fag", "kike", "spic", "chink", "tranny", "dyke", "wetback", "raghead",
         "towelhead", "paki", "gook", "coon", "beaner", "sandn*gger", "retards", "gyppo", "kaffir"]
SLUR_TEMPLATES = ["{s}", "fucking {s}", "you {s}", "shut up {s}", "dirty {s}", "go home {s}", "{s}s everywhere",
                  "bunch of {s}s", "typical {s}", "{s} lover", "filthy {s}s"]
HATE_STANDALONE = [
    "heil hitler", "sieg heil", "1488", "14 words", "white power", "white pride worldwide", "hitler did nothing wrong",
    "six million wasn't enough", "the holocaust is a hoax", "jews did 9/11", "the jews run everything",
    "zionist pigs control the government", "women belong in the kitchen", "women are property",
    "women are only good for one thing", "being gay is a disease", "trans is a mental illness",
    "god hates fags", "send them back on the boats", "they're invading us, stop the boats by force",
    "race mixing is a sin", "the great replacement is happening", "deport every last one of them",
    "these third world savages", "subhumans from the desert", "monkeys in suits", "go back to your country",
    "go back to the jungle", "learn english or get out", "islam is a cancer", "muslims are a plague on europe",
]

CLEAN_TEMPLATES = [
    "anyone know how to {tech}?", "I think we should {plan}", "just {did} and it {result}", "{greet} {people}",
    "does {thing} work on {platform}?", "what do you think about {topic}", "{react} {topic}",
    "I'm {feeling} today", "going to {place} {when}", "can someone help me with {tech}", "{thanks}",
    "who's joining {event} {when}?", "the {thing} is {quality}", "I just finished {media}, it was {quality}",
    "{did} {when}", "reminder: {event} {when}", "lol {react2}", "has anyone seen {media}?",
    "the {thing} keeps {failing}", "I'll {plan2} {when}", "my {rel} {life}", "{q} {topic}?",
]
SLOTS = {
    "tech": ["set up the reverse proxy", "configure nginx", "fix this rust borrow error", "use git rebase",
             "restore a backup", "install the drivers", "debug the websocket", "export the data to csv",
             "write a systemd unit", "tune postgres", "read this stack trace", "compile for arm"],
    "plan": ["move the meeting", "split the channel", "vote on it", "write it down", "ask the mods",
             "try again next week", "order more chairs", "pin the schedule", "use the other repo"],
    "did": ["updated the wiki", "rebooted the router", "cleaned the kitchen", "ran the tests", "deployed v2",
            "finished the essay", "fed the cat", "booked the tickets", "baked bread", "fixed the bike"],
    "result": ["worked", "failed again", "took forever", "went fine", "broke something else", "was easy"],
    "greet": ["hi", "hello", "hey", "morning", "evening", "yo", "good night", "welcome back"],
    "people": ["everyone", "all", "folks", "team", "friends", "y'all", "people", "gang", "chat"],
    "thing": ["new update", "bot", "printer", "laptop", "server", "app", "bus", "wifi", "game", "release",
              "plugin", "camera", "microwave", "map", "api", "dashboard"],
    "platform": ["linux", "mac", "android", "windows", "the raspberry pi", "firefox", "ios"],
    "topic": ["the new logo", "the patch notes", "the weekend plans", "the book club pick", "the proposal",
              "the tournament bracket", "remote work", "the new rules", "the budget", "the election debate",
              "the match", "the trailer", "the recipe", "climate policy", "the refugee crisis coverage",
              "the history of religion", "the gay rights march", "women's football", "immigration law"],
    "react": ["love", "not a fan of", "really curious about", "confused by", "excited about", "worried about"],
    "react2": ["that's hilarious", "no way", "true", "same", "mood", "big mood", "this is gold", "I can't",
               "classic", "called it"],
    "feeling": ["tired", "happy", "stressed", "bored", "excited", "sick", "busy", "so done", "chill"],
    "place": ["the gym", "the beach", "my parents'", "the library", "the office", "the store", "the park",
              "Leeds", "Berlin", "the concert"],
    "when": ["tonight", "tomorrow", "later", "this weekend", "at 5", "next week", "after lunch", "on friday",
             "in an hour", "soon", ""],
    "thanks": ["thanks!", "thank you so much", "ty", "cheers mate", "much appreciated", "thx all",
               "you're a lifesaver", "you rock", "you're awesome"],
    "event": ["the raid", "game night", "the meetup", "the stream", "the workshop", "movie night", "the call"],
    "quality": ["great", "amazing", "meh", "broken", "awesome", "terrible", "decent", "slow", "so good",
                "mid", "a masterpiece", "overrated", "bad", "garbage", "wild"],
    "media": ["the new season", "that book", "the album", "the documentary", "the final episode", "the game"],
    "failing": ["crashing", "disconnecting", "freezing", "lagging", "timing out", "jamming"],
    "plan2": ["ping you", "check", "look into it", "send it", "call you", "be there", "push the fix"],
    "rel": ["mum", "brother", "sister", "dad", "roommate", "dog", "cat", "partner", "neighbour"],
    "life": ["just got a new job", "is visiting", "made dinner", "adopted a puppy", "is sick", "loves this",
             "broke a leg skiing", "is learning guitar"],
    "q": ["thoughts on", "anyone following", "any news on", "opinions on", "links about"],
}
CLEAN_LINES = [
    "can you kill the old worker processes", "kill the container and rebuild it", "pkill node fixed it",
    "the process got killed by the OOM killer", "I killed the job, it was stuck", "kill switch is enabled",
    "kill -HUP the daemon to reload config", "the build killed my laptop", "killing the tmux session now",
    "you can murder a burger at that place", "I would murder a curry tonight", "I could kill for a coffee",
    "murder mystery night was great", "the podcast about the murder case is gripping",
    "this beat slaps", "that album slaps", "new single slaps hard", "the soundtrack slaps",
    "Scunthorpe is in Lincolnshire", "I grew up near Scunthorpe", "train to Scunthorpe is late",
    "Penistone station", "Clitheroe castle is lovely", "we drove through Cockermouth",
    "Shitterton is a real village in Dorset", "my cousin lives in Essex", "Sussex in the summer",
    "Middlesex university", "Dickinson wrote beautiful poems", "Charles Dickens novels", "Hancock is a film",
    "Babcock is hiring", "a peacock in the garden", "Hitchcock films are classics", "shiitake mushrooms",
    "add cumin and coriander", "cumulative rainfall this year", "cocktail hour at 6", "the cockpit of a plane",
    "a cockatoo on my balcony", "assessment deadline tomorrow", "classic assassin movie",
    "the assassin class is overpowered", "bass guitar", "grass needs cutting", "passionate about analysis",
    "the therapist was kind", "sextant navigation", "jazz sextet", "titmouse on the feeder",
    "great tit spotted in the park", "the sussex spaniel", "a rooster and a cock crowing at dawn",
    "butt joint in woodworking", "analytics dashboard", "hoe down at the barn dance", "garden hoe and rake",
    "the pussy willow is blooming", "my cat is a big pussycat", "knob on the door is loose",
    "dick tracy comics", "spotted dick is a pudding", "faggots and peas is an old British dish",
    "the bitch had puppies, six of them", "the breeder's bitch won best in show",
    "you killed it", "she slayed", "he murdered that verse", "we killed it on stage", "crushing it",
    "this is killing me lol", "dying lmao", "I'm dead", "I literally died laughing", "the meme killed me",
    "shoot me a message", "shoot, forgot", "photo shoot tomorrow", "shoot the video at noon",
    "take a stab at it", "stab at the problem", "gut feeling", "break a leg", "knock em dead",
    "drop dead gorgeous", "the bomb diggity", "that party was the bomb", "photobomb", "bath bomb",
    "execute the query", "the executioner role in the game", "the dead letter queue", "deadlock in the mutex",
    "dead pixel on my monitor", "the battery is dead", "the zombie process", "hang on a sec", "hang out later?",
    "I'm hanging the pictures", "jump to the next section", "jump in the call", "the bridge is closed",
    "traffic is terrible", "bleach the whites separately", "cut the onions", "the pill organiser",
    "I'll die on this hill", "sick beat", "sick trick bro", "that's insane", "nasty crossover",
    "wicked good", "filthy riff", "brutal workout", "savage comeback", "beast mode", "crazy good",
    "hit me up", "hit the gym", "beat the level", "beat the eggs", "whip the cream", "smash that like button",
    "smashed my exam", "attack on titan", "sneak attack", "heart attack scare at the hospital last year",
    "nuke the cache", "destroy the old vm", "fire the event", "trigger the workflow", "fire away",
    "I hate when that happens", "I hate cilantro", "I hate waiting", "hate the new ui",
    "stupid bug took all day", "dumb question: where is the config?", "this is a stupid idea but hear me out",
    "I'm an idiot, forgot to save", "silly me", "I feel like such a loser at this game", "I'm so dumb lol",
    "you're not stupid, the docs are confusing", "don't call yourself an idiot",
    "sex ed class", "the sex of the puppies", "gender and sex in biology", "sexual health clinic hours",
    "breastfeeding support group", "breast stroke swimming", "chicken breast recipe", "the naked chef",
    "skinny dipping story", "the nude painting in the museum", "nudibranch photos",
    "the holocaust memorial visit", "the slave trade in history class", "racism in football needs to end",
    "we stand against hate speech", "reporting hate speech to the mods", "please don't use slurs here",
    "my jewish friend invited me to seder", "eid celebrations", "gay marriage anniversary", "my wife and I",
    "trans rights are human rights", "immigrants built this city", "refugee support volunteers needed",
    "the black history month event", "asian food festival", "women in tech meetup", "disability access ramp",
    "fuck, the build broke", "shit, I forgot the keys", "damn that's good", "hell yeah", "holy crap",
    "what the fuck just happened lol", "fucking finally", "bloody hell", "oh shit it works", "no fucking way",
    "this is bullshit, the bus is late again", "that's fucked up, poor guy", "fuck me that's hot sauce",
    "shit happens", "badass trailer", "kick ass show", "it's a pain in the ass to configure",
    "I look like shit today", "I'm so fucking tired", "fuck this weather", "damn it",
]

OBFUSCATE_LEET = {"a": "4@", "e": "3", "i": "1!", "o": "0", "s": "5$", "t": "7", "u": "ü", "c": "ç"}
ACCENT = {"a": "àáä", "e": "èéë", "i": "ìíï", "o": "òóö", "u": "ùúü", "c": "ç", "n": "ñ", "y": "ý"}


def obfuscate(text, rng):
    mode = rng.choice(["leet", "space", "mask", "repeat", "accent", "dots", "mixed", "case", "homoglyph"])
    words = text.split(" ")
    # pick the longest word or two to disguise
    idx = sorted(range(len(words)), key=lambda k: -len(words[k]))[: rng.choice([1, 2])]
    for k in idx:
        w = words[k]
        if len(w) < 3:
            continue
        if mode == "leet" or (mode == "mixed" and rng.random() < 0.5):
            w = "".join(rng.choice(OBFUSCATE_LEET[c]) if c in OBFUSCATE_LEET and rng.random() < 0.6 else c for c in w)
        elif mode == "space":
            w = " ".join(w)
        elif mode == "dots":
            w = rng.choice([".", "-", "_", "*"]).join(w)
        elif mode == "mask":
            vowels = [j for j, c in enumerate(w) if c in "aeiou"]
            if vowels:
                j = rng.choice(vowels)
                w = w[:j] + rng.choice(["*", "**", "#", "@"]) + w[j + 1:]
        elif mode == "repeat":
            j = rng.randrange(len(w))
            w = w[:j + 1] + w[j] * rng.randint(2, 5) + w[j + 1:]
        elif mode == "accent":
            w = "".join(rng.choice(ACCENT[c]) if c in ACCENT and rng.random() < 0.5 else c for c in w)
        elif mode == "homoglyph":
            w = w.replace("a", "а").replace("o", "о").replace("e", "е")
        elif mode == "case":
            w = "".join(c.upper() if rng.random() < 0.5 else c for c in w)
        words[k] = w
    return " ".join(words)


def fill(template, rng, extra=None):
    out = template
    slots = dict(SLOTS)
    if extra:
        slots.update(extra)
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        key = out[start + 1:end]
        out = out[:start] + rng.choice(slots[key]) + out[end + 1:]
    return " ".join(out.split())


def insult_line(rng):
    r = rng.random()
    if r < 0.35:
        line = f"{rng.choice(YOU_ARE)} {rng.choice(INSULT_ADJ)} {rng.choice(INSULT_NOUN)}"
    elif r < 0.55:
        line = f"{rng.choice(YOU_ARE)} {rng.choice(INSULT_NOUN)}"
    elif r < 0.65:
        line = f"{rng.choice(['shut up', 'stfu', 'fuck off', 'go away', 'get lost', 'sit down'])} {rng.choice(['you', 'u', ''])} {rng.choice(INSULT_ADJ)} {rng.choice(INSULT_NOUN)}"
    elif r < 0.72:
        line = f"{rng.choice(INSULT_NOUN)}"
    else:
        line = rng.choice(INSULT_STANDALONE)
    return line + rng.choice(INSULT_TAIL)


def generate(seed=17, n_per_label=900, n_clean=3200, obfuscated_share=0.3):
    rng = random.Random(seed)
    rows = []  # (set(labels), text)

    def add(labels, text):
        rows.append((frozenset(labels), text))
        if rng.random() < obfuscated_share:
            rows.append((frozenset(labels), obfuscate(text, rng)))

    for _ in range(n_per_label):
        add({"insult"}, insult_line(rng))
    for _ in range(n_per_label):
        t = fill(rng.choice(THREAT_TEMPLATES), rng, {"v": THREAT_VERB, "o": THREAT_OBJ, "t": THREAT_TIME})
        labels = {"threat"}
        if rng.random() < 0.15:
            t = t + ", " + rng.choice(INSULT_NOUN)
            labels.add("insult")
        add(labels, t)
    for _ in range(n_per_label):
        t = rng.choice(SELF_HARM_TEMPLATES)
        labels = {"self_harm"}
        if rng.random() < 0.2:
            t = t + " you " + rng.choice(INSULT_ADJ) + " " + rng.choice(INSULT_NOUN)
            labels.add("insult")
        add(labels, t)
    for _ in range(n_per_label):
        t = fill(rng.choice(SEXUAL_TEMPLATES), rng, {"b": BODY})
        labels = {"sexual"}
        if rng.random() < 0.1:
            t = t + " " + rng.choice(["slut", "whore", "bitch"])
            labels.add("insult")
        add(labels, t)
    for _ in range(n_per_label):
        r = rng.random()
        if r < 0.55:
            t = fill(rng.choice(HATE_TEMPLATES), rng, {"g": GROUPS, "p": HATE_PRED})
        elif r < 0.8:
            t = fill(rng.choice(SLUR_TEMPLATES), rng, {"s": SLURS})
        else:
            t = rng.choice(HATE_STANDALONE)
        labels = {"hate"}
        if rng.random() < 0.08:
            t = t + ", we will find you"
            labels.add("threat")
        add(labels, t)
    for _ in range(n_clean):
        if rng.random() < 0.45:
            t = rng.choice(CLEAN_LINES)
        else:
            t = fill(rng.choice(CLEAN_TEMPLATES), rng)
        add(set(), t)
    # de-duplicate, keeping order
    seen = set()
    out = []
    for labels, text in rows:
        if text in seen:
            continue
        seen.add(text)
        out.append((labels, text))
    return out


# --- second batch (added after the first evaluation run showed whole kinds of line missing:
# veiled threats, harassment without swear words, suggestive lines without explicit words,
# clean lines that share tails like "honestly" or "lol") ---
THREAT_TEMPLATES += [
    "your time is running out", "your clock is ticking", "you have days left", "enjoy your final days",
    "you won't live to see next year", "this is the last week you'll be breathing", "say goodbye to your family",
    "I'd hate for something to happen to your daughter", "nice house you have, shame if it caught fire",
    "nice car, would be a shame if the brakes failed", "your sister walks home alone right?",
    "I know your kid's school", "I know what time you leave the office", "I know your schedule",
    "see you at your front door", "I'll be at your doorstep", "I'll show up at your job",
    "I'll come to your place and we'll see who's tough", "wait till I get my hands on you",
    "when I find you, you're finished", "you're finished, mark my words", "you won't be smiling for long",
    "keep it up and you'll wake up in a ditch", "people have gone missing for less",
    "accidents happen to people like you", "I've got friends who can make you vanish",
    "I'll put you six feet under", "I'll shut you up for good", "I'll silence you permanently",
    "I'm going to shoot up the school", "I'm bringing a knife to class tomorrow",
    "I'll blow up the building", "there will be a bomb at the meetup", "I'll get my rifle",
    "loading my gun right now", "I hope someone rapes you", "I hope you get beaten to death",
    "you deserve to be murdered", "you'll get what's coming to you", "I'll beat you to a pulp",
    "I'll knock your teeth out", "I'll rearrange your face", "I'll make you bleed",
    "I'm going to come over and wreck you", "you'll be jumped after class", "we'll get you after practice",
    "me and the boys will find you", "we know where your parents live", "tell your mum to lock the doors",
    "sleep tight, I'm watching", "I'm watching you", "look behind you",
]
SELF_HARM_TEMPLATES += [
    "go swallow a bottle of pills", "go play on the highway", "lie down on the train tracks",
    "jump, nobody will stop you", "you know what you should do, and it involves a rope",
    "everyone would be relieved if you just stopped existing", "you're a waste, end yourself",
    "why not just end it, nobody cares", "go starve", "hope you cut yourself again",
    "you should have killed yourself years ago", "do it, end it tonight", "the bridge is waiting for you",
    "the world would be a better place without you in it", "delete yourself", "uninstall yourself from life",
    "nobody would notice if you were gone, so go", "just stop living", "you don't deserve to be alive",
]
SEXUAL_TEMPLATES += [
    "what are you wearing right now 😏", "take it off for me", "I'm playing with myself", "touching myself rn",
    "I'd pin you against the wall and take you", "I want you in my bed tonight", "come to my room and get on your knees",
    "on your knees", "open wide", "sit on it", "I want to eat you", "let me taste you", "I'm dripping",
    "got me so hard", "wet just thinking about you", "thinking about you naked", "I fantasize about you every night",
    "I busted to your selfie", "came to your pics", "your mouth on my dick", "I want your lips on me",
    "call me daddy", "be a good girl for daddy", "I'll spank you till you beg", "wanna hook up tonight, no strings",
    "u dtf?", "dtf?", "looking for a fwb", "nsfw pics in my dms", "I sell nudes", "selling pics dm me",
    "rate my dick pic", "send me your body count and a pic", "I want to see you undress on stream",
    "show some skin", "bend over", "face down ass up", "threesome tonight?", "strip tease for me",
]
INSULT_STANDALONE += [
    "everybody here finds you annoying", "no one in this server likes you", "you should leave, nobody wants you",
    "you're the reason people leave this chat", "keep talking, you just prove how dumb you are",
    "were you dropped as a baby", "your parents must regret having you", "your mum should have swallowed",
    "you're as thick as a brick", "you have the brain of a goldfish", "your face could scare a dog",
    "go whine to your mummy", "crybaby", "cry more", "snowflake", "what a snowflake",
    "I'll send your messages to your employer, see how they like it", "I'm screenshotting this for your boss",
    "I'll make sure everyone at your school sees this", "I'll tell everyone your real name", "get out of my server",
    "I'll make this place miserable for you", "I'll follow you to every channel you join",
    "nobody will ever date you", "you'll die alone", "you're unlovable", "you're a total embarrassment",
    "you're mentally ill", "you're a psycho", "you need a lobotomy", "you're brain dead",
    "you're dumber than a rock", "thick as two short planks", "you absolute walnut", "you melt", "you knob",
    "you plonker", "you tit", "absolute bellend", "stupid cow", "silly bitch", "dumb twat",
    "shut the fuck up", "shut your face", "zip it, moron", "go fuck yourself", "fuck right off",
    "you're a fucking disgrace", "sit down and shut up", "talk when you have a brain",
]
HATE_STANDALONE += [
    "hitler had the right idea", "adolf was right about them", "the nazis were right", "bring back the camps",
    "the holocaust didn't happen, but it should have", "holohoax", "6 gorillion lol",
    "we need another kristallnacht", "they're not people, they're animals", "those people are a plague",
    "they breed like cockroaches", "this neighbourhood was fine before they moved in",
    "lock your doors, the gypsies are here", "never hire a woman, they're too emotional",
    "women can't do maths", "girls can't code", "feminazis should shut up", "dumb broads",
    "gays are perverts", "homos should be jailed", "lgbt is a mental disorder", "trannies aren't real women",
    "groomers, every one of them", "muzzies", "musloids", "islamists out", "jewish rats", "jew bankers",
    "shylock", "burn the synagogue", "burn their mosque", "blow up the mosque", "kill the infidels",
    "dirty immigrants", "illegals are animals", "invaders should be shot at the border",
    "send the boats back and sink them", "go back to where you came from", "build the wall and shoot anyone who climbs it",
    "retards should be locked away", "cripples are useless", "spastics", "mongs",
]
CLEAN_LINES += [
    "honestly the recipe needs more salt", "honestly that's fair", "lol you're right", "tbh I agree",
    "fr this is the best album", "you're a genius", "you're a legend", "you absolute star",
    "you're the goat", "you beautiful human", "you're too kind", "you're hilarious", "what a legend",
    "what a save!", "what a game", "you madman, you actually did it", "you crazy genius",
    "brb", "brb coffee", "grabbing lunch", "grabbing a drink, back in 5", "grab a seat",
    "I need to grab my charger", "can you grab the link?", "afk", "gtg", "ttyl", "omw",
    "i don't get it", "I don't get the joke", "can someone explain", "what does that mean?",
    "that was a brutal ending", "ruthless strategy", "Napoleon invaded Russia", "the emperor was cruel",
    "the villain kills everyone in the end", "the book has a murder in chapter 3", "crime documentary",
    "we bombed the pitch", "I bombed the exam", "the show bombed at the box office",
    "holy shit that's big", "the damn pigeons again", "bastard of a bug", "the bastard sword in the game",
    "I'm dying lol", "dead 💀", "I'm deceased", "lmaooo I'm crying", "crying laughing",
    "I'm going to make this the best server", "I'll make sure everyone knows about the meetup",
    "nobody asked but here's my ranking", "I hope you get well soon", "I hope you win",
    "see you at the door at 7", "I'll show up at 6", "I'll come over after work",
    "watch your step, the floor is wet", "watch out for the deadline", "keep your eyes open for typos",
    "the days are getting shorter", "count the days until holiday", "enjoy your week", "enjoy your weekend!",
    "last week was rough", "my days are numbered at this job lol", "the clock is ticking on the release",
    "the game of thrones finale", "they hunted for eggs all morning", "hunting for bugs",
    "the kids played in the park", "play in the snow", "traffic was awful", "the bridge was closed",
    "drink water", "take your meds", "take a break", "the pills are in the cabinet",
    "I'm wearing my new jacket", "what are you wearing to the wedding?", "on my knees fixing the sink",
    "sit on the couch", "open the window", "taste the sauce", "let me taste the cake", "I'm soaked from the rain",
    "touch grass", "spank bank holiday lol", "daddy long legs spider in the bath", "good girl, sit! (the dog)",
    "bend the rules", "strip the wallpaper", "rate my setup", "nice pics from the trip",
    "the holocaust museum in berlin", "the history of the roma people", "muslim holidays calendar",
    "jewish new year", "hitler's rise to power in the textbook", "ww2 documentary",
    "nobody likes mondays", "nobody likes the new ui", "everyone hates traffic", "leave the server running",
    "just leave it", "you're the dumbest... I mean smartest lol jk", "are you thick? (the crust, I mean)",
    "the dumbest bug I've ever seen", "this is the dumbest update", "dumb phone", "smart watch",
    "go for it", "do it!", "just do it", "end the stream", "end the call", "end of the day",
    "the end is near (of the semester)", "hang the coats", "cut the cake", "bleach the shirt",
]
CLEAN_TEMPLATES += [
    "{react2} {tail}", "{thanks} {tail}", "{greet} {people} {tail}", "the {thing} is {quality} {tail}",
    "{did} {tail}", "I'm {feeling} {tail}",
]
SLOTS["tail"] = ["lol", "lmao", "honestly", "tbh", "fr", "smh", "!!", "😂", "🙄", "🤡", "💀", "haha", "ngl"]
SLOTS["media"] += ["that murder mystery", "the war movie", "the horror game", "the killer thriller"]

# --- third batch: fillers and framing, so a swear word or a name between "kill" and "you" does
# not hide the threat; more ways to say the same harms ---
THREAT_TEMPLATES += [
    "I'll break your bones", "every bone in your hand will be broken", "I'll break your arms",
    "I'll cripple you", "you'll never walk straight again", "you'll be in a wheelchair after I'm done",
    "don't sleep too deeply tonight", "lock your doors tonight", "keep one eye open",
    "a bullet for you", "put a bullet in him", "someone should shoot that guy", "someone should run you over",
    "you'll get stabbed", "I'll come over there and finish you", "I'll end you", "I'll end you and your family",
    "your life ends this week", "dead by friday", "mark my words you're dead", "ur dead",
    "you'll vanish and nobody will care", "nobody will find you", "you'll be found in a river",
    "I'm going to shoot everyone at the office", "shooting up the mall tomorrow", "mass shooting at school friday",
    "the office will burn with everyone inside", "you're getting beaten up tomorrow", "we'll jump you after school",
    "watch your back", "watch ur back", "better watch your back", "watch yourself out there",
]
SEXUAL_TEMPLATES += [
    "I'd bend you over the table", "bend over the bed for me", "I'd have you against the counter",
    "nice tits", "nice ass", "great rack", "nice boobs, more pics?", "more pics of your body pls",
    "got any nudes", "any spicy pics?", "I want to see more of you, without the clothes",
    "I'll show you my dick if you show me your tits", "trade nudes?", "swap pics?",
    "jerked it to your photos", "wanked over your profile", "your lips around my cock", "your mouth around my dick",
    "I want to eat you out", "let me go down on you", "are you single? I want to fuck",
    "freaky in bed?", "bet you're wild in bed", "you look like you'd be good in bed",
]
SELF_HARM_TEMPLATES += [
    "swallow the whole bottle", "take every pill you have", "finish the bottle of pills tonight",
    "you know what to do, do everyone a favour", "you're a burden, you know what to do",
    "do the right thing and disappear for good", "drink bleach lol", "bleach, drink it",
]
HATE_STANDALONE += [
    "gypsies are thieves", "roma steal everything", "travellers are thieves", "asians are robots",
    "they're all the same, these chinese", "the holocaust is a lie and they deserved worse",
    "hitler was a hero", "shoot every jew", "every muslim should be shot", "all gays should be shot",
]
FILLERS = ["fucking", "literally", "seriously", "honestly", "really", "so", "just", "totally", "bloody"]
PREFIXES = ["bro", "mate", "listen", "lol", "ok", "yo", "dude", "hey", "look", "@jordan", "sam", "alex,"]


def frame(text, rng):
    """A filler word inside, a name or interjection in front: the same meaning, other n-grams."""
    words = text.split(" ")
    r = rng.random()
    if r < 0.4 and len(words) > 1:
        k = rng.randrange(1, len(words))
        words.insert(k, rng.choice(FILLERS))
    elif r < 0.7:
        words.insert(0, rng.choice(PREFIXES))
    else:
        words.append(rng.choice(["", "!", "lol", "tbh", "...", "?", "rn", "fr"]))
    return " ".join(w for w in words if w)


_generate_v1 = generate


def generate(seed=17, **kw):
    rows = _generate_v1(seed=seed, **kw)
    rng = random.Random(seed + 1)
    framed = [(labels, frame(text, rng)) for labels, text in rows if rng.random() < 0.35]
    seen = {t for _, t in rows}
    rows += [(l, t) for l, t in framed if t not in seen]
    return rows
