//! A configuration as OpenConnector's repository ships its `configurations/` flows (one JSON file
//! per object, references by database id, JSON-LD keys, the misspelt `passTrough`, an unknown cast,
//! an empty location, rules and `extraDataConfigs`), imported from its folder and run over a real
//! socket. The expected texts of the pure-Twig fields were rendered by PHP's Twig 3.5.1 from the same
//! templates and records; `preg_replace` and `executeMapping` are OpenConnector's own and were worked
//! out by hand.

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};
use syncline::openconnector;
use syncline::store::StateDir;

use super::common::serve;
use super::hostile::syncline_async;

/// The cases the upstream serves: two published, one whose case type the conditions leave out.
fn cases() -> Value {
    json!({"count": 3, "results": [
        {"identificatie": "Z-1", "omschrijving": "  Verzoek <b>Woo</b> over wegen  ", "zaaktypecode": "B0757",
         "startdatum": "2024-09-03T10:00:00+00:00", "vertrouwelijkheid": null, "kenmerken": {"bron": "suite", "jaar": 2024},
         "files": [{"titel": "Besluit", "bestandsnaam": "besluit.pdf", "inhoud": "aGFsbG8="}, {"titel": "", "bestandsnaam": "bijlage.pdf"}]},
        {"identificatie": "Z-2", "omschrijving": "Klacht over <i>afval</i>", "zaaktypecode": "LP00000431", "startdatum": "2025-01-31",
         "vertrouwelijkheid": "Vertrouwelijk", "onderwerp": "Afval", "kenmerken": {}, "files": []},
        {"identificatie": "Z-3", "omschrijving": "Intern", "zaaktypecode": "X1", "startdatum": "2025-02-01", "files": []}
    ]})
}

/// The mapping's templates: the constructs the shipped flows use, as they write them.
fn publication_mapping() -> Value {
    json!({
        "reference": "identificatie",
        "title": "{{ omschrijving|striptags|trim }}",
        "category": "{% if zaaktypecode|default %}{% set wooVerzoekenEnBesluiten = ['LP00000431', 'B1873'] %}{% set klachtoordelen = ['LP00000091', 'B0757'] %}{% if zaaktypecode in wooVerzoekenEnBesluiten %}{{ 'Woo-verzoeken en -besluiten' }}{% elseif zaaktypecode in klachtoordelen %}{{ 'Klachtoordelen' }}{% else %}Overig{% endif %}{% endif %}",
        "published": "{{ startdatum|date('Y-m-d') }}",
        "confidentiality": "{{ vertrouwelijkheid ?? 'openbaar' }}",
        "open": "{% if vertrouwelijkheid is null %}open{% else %}{{ vertrouwelijkheid|lower }}{% endif %}",
        "features": "{% for k, v in kenmerken %}{% if not loop.first %};{% endif %}{{ k }}={{ v }}{% endfor %}",
        "attachments": "[{% if files is defined and files is not empty %}{% for file in files %}{ {% if file['titel']|default %}\"filename\": \"{{ file['bestandsnaam'] }}\",{% endif %}\"label\": \"{{ 'woo_informatieverzoek' }}\"{% if file['inhoud']|default %},\"content\": \"{{ file.inhoud }}\"{% endif %} }{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}]",
        "extra": "{{ kenmerken|merge({'zaak': identificatie})|json_encode }}",
        "fileCount": "{{ files is iterable ? files|length : 0 }}",
        "summary": "{{ omschrijving|striptags|trim|replace({'wegen': 'straten'}) }}",
        "subject": "{{ onderwerp|default('geen onderwerp') }}",
        "slug": "{{ identificatie|lower }}{% if onderwerp is not defined %}-z{% endif %}",
        "path": "{{ omschrijving|striptags|trim|lower|preg_replace('/[^a-z0-9]+/', '-') }}",
        "document": "{% if files is not empty %}{{ executeMapping(2, files|first)|json_encode }}{% endif %}",
        "status": "Concept"
    })
}

/// The folder, file by file, pointing nowhere yet (the location is each installation's).
fn folder(root: &std::path::Path) {
    let write = |path: &str, value: Value| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    };
    write(
        "sources/zaken-api.json",
        json!({
            "@context": {"schema": "http://schema.org", "register": "501"}, "@type": "source",
            "name": "Zaken API", "description": "", "reference": null, "version": "0.0.1", "location": "", "isEnabled": true,
            "type": "api", "authorizationHeader": null, "auth": "none", "authorizationPassthroughMethod": "header",
            "authenticationConfig": [], "configuration": {"headers.Accept": "application/json"}, "logRetention": 3600, "test": false
        }),
    );
    write(
        "mappings/Mapping-Zaak to Publicatie-v0.0.3.json",
        json!({
            "@context": {"schema": "http://schema.org"}, "@type": "mapping",
            "name": "Zaak to Publicatie", "version": "0.0.3", "mapping": publication_mapping(), "unset": [""],
            "cast": {"title": "unsetIfValue==omschrijving", "attachments": "jsonToArray", "extra": "jsonToArray",
                     "fileCount": "int", "document": "jsonToArray", "subject": "trimmed,string"},
            "passTrough": false
        }),
    );
    write(
        "mappings/bestand.json",
        json!({
            "id": 2, "name": "Bestand", "mapping": {"naam": "bestandsnaam", "soort": "{{ titel|lower }}"}, "passTrough": false
        }),
    );
    write(
        "rules/Rule-Fetch files-v0.0.1.json",
        json!({
            "@context": {"schema": "http://schema.org"}, "name": "Fetch files", "action": "post", "timing": "after",
            "conditions": {"==": [1, 1]}, "type": "fetch_file", "configuration": {"fetch_file": {"source": 1, "filePath": "attachments"}}
        }),
    );
    write(
        "synchronizations/zaken-to-publicaties.json",
        json!({
            "name": "Zaken to Publicaties", "version": "0.0.2", "sourceId": "1", "sourceType": "api", "sourceHash": "",
            "sourceHashMapping": "1", "sourceTargetMapping": "1",
            "sourceConfig": {
                "idPosition": "identificatie", "resultsPosition": "results", "endpoint": "/tlb/zaken", "headers": [],
                "query.maximaleVertrouwelijkheidaanduiding": "openbaar", "usesPagination": "false",
                "extraDataConfigs.0.staticEndpoint": "/tlb/zaken/{{ originId }}/informatieobjecten",
                "extraDataConfigs.0.keyToSetExtraData": "files"
            },
            "targetId": "1/1", "targetType": "register/schema",
            "conditions": {"if": [{"or": [{"in": [{"var": "zaaktypecode"}, ["LP00000431", "B1873"]]},
                                          {"in": [{"var": "zaaktypecode"}, ["LP00000091", "B0757"]]}]}, true, false]}
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipped_configuration_folder_imports_with_notices_and_runs_as_twig_would() {
    let app = Router::new().route("/tlb/zaken", get(|| async { Json(cases()) }));
    let (addr, server) = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = (dir.path().join("gemeente-woo"), dir.path().join("state"));
    folder(&config);
    let pipeline = dir.path().join("woo.yaml");
    let (config, pipeline) = (config.to_str().unwrap(), pipeline.to_str().unwrap());

    let import = syncline_async(&state, &["import", config, "-o", pipeline], &[]).await;
    import.expect(0, 512);
    for (key, says) in [
        ("sources.zaken-api.location", "set ZAKEN_API_LOCATION"),
        ("sources.zaken-api.@context", "left out"),
        ("mappings.zaak-to-publicatie.passTrough", "never reads"),
        ("mappings.zaak-to-publicatie.cast.subject", "`trimmed`"),
        ("synchronizations.zaken-to-publicaties.sourceId", "the file's only source, `zaken-api`; check it"),
        ("synchronizations.zaken-to-publicaties.sourceTargetMapping", "closest to `zaken-to-publicaties`'s, `zaak-to-publicatie`"),
        ("synchronizations.zaken-to-publicaties.sourceConfig.extraDataConfigs", ""),
        ("rules", ""),
    ] {
        let line = import.out.lines().find(|l| l.contains(key)).unwrap_or_else(|| panic!("no notice for {key}:\n{}", import.out));
        assert!(line.contains(says), "{key} says {says:?}: {line}");
    }
    import.says("the pipeline validates").says("set ZAKEN_API_LOCATION before running it");
    assert!(!import.out.contains("executeMapping(2"), "mapping 2 is in the file, by its id:\n{}", import.out);

    // Unset, the location stops the run before any request, naming the variable.
    let unset = syncline_async(&state, &["run", pipeline], &[]).await;
    assert_ne!(unset.code, Some(0), "{}", unset.out);
    unset.says("ZAKEN_API_LOCATION");

    let location = format!("http://{addr}");
    let env = [("ZAKEN_API_LOCATION", location.as_str())];
    let run = syncline_async(&state, &["run", pipeline], &env).await;
    run.expect(0, 512).says("zaken-to-publicaties: COMPLETED found 3, created 2, updated 0, unchanged 0, skipped 1");
    let register = StateDir::open(&state).unwrap().register().unwrap();
    let objects: std::collections::BTreeMap<String, Value> = register.objects_of("zaken-to-publicaties").unwrap().into_iter().collect();
    assert_eq!(
        objects["Z-1"],
        json!({
            "reference": "Z-1", "title": "Verzoek Woo over wegen", "category": "Klachtoordelen", "published": "2024-09-03",
            "confidentiality": "openbaar", "open": "open", "features": "bron=suite;jaar=2024",
            "attachments": [{"filename": "besluit.pdf", "label": "woo_informatieverzoek", "content": "aGFsbG8="}, {"label": "woo_informatieverzoek"}],
            "extra": {"bron": "suite", "jaar": 2024, "zaak": "Z-1"}, "fileCount": 2, "summary": "Verzoek Woo over straten",
            "subject": "geen onderwerp", "slug": "z-1-z", "path": "verzoek-woo-over-wegen",
            "document": {"naam": "besluit.pdf", "soort": "besluit"}, "status": "Concept"
        })
    );
    assert_eq!(
        objects["Z-2"],
        json!({
            "reference": "Z-2", "title": "Klacht over afval", "category": "Woo-verzoeken en -besluiten", "published": "2025-01-31",
            "confidentiality": "Vertrouwelijk", "open": "vertrouwelijk", "features": "", "attachments": [], "extra": {"zaak": "Z-2"},
            "fileCount": 0, "summary": "Klacht over afval", "subject": "Afval", "slug": "z-2", "path": "klacht-over-afval",
            // `jsonToArray` of an empty text is PHP's `json_decode('')`: null.
            "document": null, "status": "Concept"
        })
    );
    let again = syncline_async(&state, &["run", pipeline], &env).await;
    again.expect(0, 512).says("created 0, updated 0, unchanged 2, skipped 1");
    server.abort();
}

/// A call to a mapping the file carries under no id is named on import, with what to do about it.
#[test]
fn a_call_to_a_mapping_the_file_does_not_carry_is_named() {
    let config = json!({"components": {"mappings": [
        {"name": "Zaak", "mapping": {"rol": "{{ executeMapping(12, rol)|json_encode }}", "type": "{{ executeMapping('Zaaktype', t) }}"}},
        {"name": "Zaaktype", "mapping": {"x": "y"}}
    ]}});
    let imported = openconnector::import(&config).unwrap();
    let notices: Vec<&str> = imported.notices.iter().filter(|n| n.key == "mappings.zaak.mapping").map(|n| n.message.as_str()).collect();
    assert_eq!(notices.len(), 1, "{:?}", imported.notices);
    assert!(notices[0].contains("executeMapping(12, …)") && notices[0].contains("id: 12"), "{}", notices[0]);
}

/// Keys OpenConnector would read past are left out, each named, and what is left validates.
#[test]
fn keys_a_pipeline_does_not_read_are_left_out_by_name() {
    let config = |source: Value, mapping: Value, config: Value| {
        json!({"components": {
            "sources": [source], "mappings": [mapping],
            "synchronizations": [{"name": "s", "sourceId": "a", "sourceTargetMapping": "m", "sourceConfig": config,
                                  "targetType": "register/schema", "targetId": "r/p"}],
            "registers": [{"slug": "r", "schemas": ["p"]}], "schemas": [{"slug": "p", "properties": {}}]
        }})
    };
    let source = json!({"name": "a", "type": "api", "location": "http://127.0.0.1:9", "colour": "red", "@type": "source"});
    let imported = openconnector::import(&config(
        source,
        json!({"name": "m", "mapping": {"x": "y"}, "shade": 1}),
        json!({"idPosition": "id", "tint": 2}),
    ))
    .unwrap();
    let left_out: Vec<&str> = imported.notices.iter().filter(|n| n.message.starts_with("left out")).map(|n| n.key.as_str()).collect();
    for key in ["sources.a.colour", "sources.a.@type", "mappings.m.shade", "synchronizations.s.sourceConfig.tint"] {
        assert!(left_out.contains(&key), "{key} left out: {left_out:?}");
    }
    syncline::config::Pipeline::from_value("imported", imported.pipeline, std::path::Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
}

/// xxllnc-zgw's shape: a case mapping that builds its sub-objects by calling other mappings by
/// database id, in loops, with the loop variable merged and a separator counter set across loops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_calling_mappings_by_id_in_loops_run_as_openconnector_runs_them() {
    let case = json!({"reference": "C-7", "instance": {"phases": [
        {"name": "Intake", "fields": [{"type": "file", "magic_string": "bijlage"}, {"type": "text", "magic_string": "omschrijving"}]},
        {"name": "Besluit", "fields": [{"type": "file", "magic_string": "besluit"}]}
    ]}});
    let app = Router::new().route(
        "/api/v1/case",
        get(move || {
            let case = case.clone();
            async move { Json(json!({"result": {"instance": {"rows": [case]}}})) }
        }),
    );
    let (addr, server) = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("zgw");
    let write = |path: &str, value: Value| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, value.to_string()).unwrap();
    };
    write("sources/xxllnc.json", json!({"name": "Xxllnc v1 API", "location": "{location}", "type": "api", "auth": "none"}));
    write(
        "mappings/case-to-zaak.json",
        json!({"name": "Case to Zaak", "passTrough": false, "mapping": {
        "identificatie": "reference",
        "statustypen": "[{% for phase in instance.phases %}{% if not loop.first %},{% endif %}{% set phase = phase|merge({'casetypeReference': reference}) %}{{ executeMapping(8, phase)|json_encode }}{% endfor %}]",
        "informatieobjecttypen": "[{% set index=0 %}{% for phase in instance.phases %}{% for field in phase.fields %}{% if field.type == 'file' %}{% if index != 0 %},{% endif %}{{ executeMapping(9, field)|json_encode }}{% set index=index+1 %}{% endif %}{% endfor %}{% endfor %}]"
    }, "cast": {"statustypen": "jsonToArray", "informatieobjecttypen": "jsonToArray"}}),
    );
    write(
        "mappings/phase-to-statustype.json",
        json!({"id": 8, "name": "Phase to Statustype", "mapping": {
        "omschrijving": "name", "zaaktype": "casetypeReference", "volgnummer": "{{ fields|length }}"}, "cast": {"volgnummer": "int"}}),
    );
    write(
        "mappings/field-to-informatieobjecttype.json",
        json!({"id": "9", "name": "Field to Informatieobjecttype", "mapping": {
        "omschrijving": "{{ magic_string|capitalize }}"}}),
    );
    write(
        "synchronizations/cases.json",
        json!({"name": "Xxllnc cases to ZGW zaken", "sourceId": "1", "sourceType": "api",
        "sourceTargetMapping": "1", "sourceConfig": {"endpoint": "/api/v1/case", "idPosition": "reference",
        "resultsPosition": "result.instance.rows", "usesPagination": "false"}, "targetType": "register/schema", "targetId": "1/1"}),
    );

    let state = dir.path().join("state");
    let pipeline = dir.path().join("zgw.yaml");
    let (root, pipeline) = (root.to_str().unwrap(), pipeline.to_str().unwrap());
    let import = syncline_async(&state, &["import", root, "-o", pipeline], &[]).await;
    import.expect(0, 512).says("set XXLLNC_V1_API_LOCATION before running it");
    let line =
        import.out.lines().find(|l| l.contains("synchronizations.xxllnc-cases-to-zgw-zaken.sourceTargetMapping")).unwrap_or_default();
    assert!(line.contains("`case-to-zaak`"), "the mapping guessed by name is the case mapping: {}", import.out);
    let location = format!("http://{addr}");
    let run = syncline_async(&state, &["run", pipeline], &[("XXLLNC_V1_API_LOCATION", location.as_str())]).await;
    run.expect(0, 512).says("COMPLETED found 1, created 1");
    let register = StateDir::open(&state).unwrap().register().unwrap();
    let objects = register.objects_of("xxllnc-cases-to-zgw-zaken").unwrap();
    assert_eq!(
        objects[0].1,
        json!({
            "identificatie": "C-7",
            "statustypen": [{"omschrijving": "Intake", "zaaktype": "C-7", "volgnummer": 2}, {"omschrijving": "Besluit", "zaaktype": "C-7", "volgnummer": 1}],
            "informatieobjecttypen": [{"omschrijving": "Bijlage"}, {"omschrijving": "Besluit"}]
        })
    );
    server.abort();
}
