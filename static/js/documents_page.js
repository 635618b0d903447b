// A page whose only live part is the documents panel (the patient's page after the end).
import { pageData } from "./page.js";
import { mountDocuments } from "./documents.js";

mountDocuments(pageData().documents);
